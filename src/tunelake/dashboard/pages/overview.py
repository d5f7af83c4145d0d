"""Overview: headline numbers, listening over time (click a bar to zoom the date filter to it), top lists."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from dash import Input, Output, html, no_update

from tunelake.dashboard import FilterState, Warehouse, clicked, parse_date
from tunelake.dashboard.pages.common import (
    PALETTE,
    Chart,
    EmptyResult,
    Fig,
    as_frame,
    card,
    graph,
    guarded,
    hbar,
    metric,
    plain_fig,
    values,
)

KEY, NAME, PATH = "overview", "Overview", "/"

KPI_CARDS = (  # (key in insights.kpis, label, format)
    ("plays", "Plays", "{:,}"),
    ("streams", "Streams (≥ 30 s)", "{:,}"),
    ("hours", "Hours listened", "{:,.1f}"),
    ("listeners", "Listeners", "{:,}"),
    ("distinct_artists", "Artists", "{:,}"),
    ("distinct_tracks", "Tracks", "{:,}"),
    ("skip_rate", "Skip rate", "{:.1%}"),
    ("mean_completion", "Mean completion", "{:.1%}"),
)


def layout(viewer: Any = None) -> html.Div:
    return html.Div([
        html.H1("Overview"),
        html.Div(id="kpis", className="kpis"),
        card(graph("over-time"), html.P("Click a bar to filter every chart to that period.", className="hint"),
             width="full"),
        card(graph("top-artists")),
        card(graph("top-tracks")),
        card(graph("top-genres"), width="full"),
    ], className="grid")


def kpi_cards(wh: Warehouse, fs: FilterState) -> list[html.Div]:
    """KPI tiles; each carries its exact value in data-value so tests compare numbers, not formatting."""
    with wh.cursor() as con:
        k = metric("kpis", con, fs)
    tiles = []
    for key, label, fmt in KPI_CARDS:
        value = k.get(key)
        shown = "–" if value is None else fmt.format(value)
        tiles.append(html.Div([html.Div(shown, className="kpi-value"), html.Div(label, className="kpi-label")],
                              id=f"kpi-{key.replace('_', '-')}", className="kpi",
                              **{"data-value": "" if value is None else repr(value)}))
    return tiles


def grain_for(fs: FilterState, wh: Warehouse) -> str:
    """Weeks for windows up to ~6 months, months beyond, days for a month or less."""
    lo, hi = fs.start, fs.end
    if not (lo and hi):
        with wh.cursor() as con:
            dmin, dmax = con.execute("SELECT min(date), max(date) FROM dim_date").fetchone()
        lo, hi = lo or (dmin.isoformat() if dmin else None), hi or (dmax.isoformat() if dmax else None)
    if not (lo and hi):
        return "month"
    span = (date.fromisoformat(hi) - date.fromisoformat(lo)).days
    return "day" if span <= 45 else "week" if span <= 200 else "month"


@guarded("Listening over time")
def over_time(wh: Warehouse, fs: FilterState) -> Fig:
    grain = grain_for(fs, wh)
    with wh.cursor() as con:
        df = as_frame(metric("listening_over_time", con, fs, grain))
    if df.empty:
        raise EmptyResult()
    periods = pd.to_datetime(df["period"])
    ends = {"day": periods, "week": periods + pd.Timedelta(days=6),
            "month": periods + pd.offsets.MonthEnd(0)}[grain]
    bars = {"type": "bar", "x": values(periods), "y": values(df["hours"]), "marker": {"color": PALETTE[0]},
            "name": "hours",
            "customdata": [list(c) for c in zip(periods.dt.strftime("%Y-%m-%d"), ends.dt.strftime("%Y-%m-%d"),
                                                values(df["plays"]), strict=True)],
            "hovertemplate": "%{customdata[0]} – %{customdata[1]}<br>%{y:,.1f} h · %{customdata[2]:,} plays"
                             "<extra></extra>"}
    line = {"type": "scatter", "x": values(periods), "y": values(df["listeners"]), "yaxis": "y2",
            "name": "listeners", "mode": "lines+markers", "line": {"color": PALETTE[1]}}
    layout = {"yaxis": {"title": {"text": "hours"}},
              "yaxis2": {"title": {"text": "listeners"}, "overlaying": "y", "side": "right", "rangemode": "tozero",
                         "showgrid": False},
              "legend": {"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"}, "bargap": 0.1}
    return plain_fig([bars, line], layout, f"Listening over time (per {grain})")


@guarded("Top artists")
def top_artists(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("top_artists", con, fs, 12))
    return hbar(df, "artist_name", "hours", "Top artists (hours)", "top-artists", customdata="artist_id")


@guarded("Top tracks")
def top_tracks(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("top_tracks", con, fs, 12))
    if not df.empty:
        df["label"] = df["track_name"].astype(str).str.slice(0, 28) + " · " + df["artist_name"].astype(str)
    return hbar(df, "label", "hours", "Top tracks (hours)", "top-tracks", customdata="track_id")


@guarded("Top genres")
def top_genres(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("top_genres", con, fs, 15))
    if df.empty:
        raise EmptyResult()
    bars = {"type": "bar", "x": values(df["genre"]), "y": values(df["share"]), "marker": {"color": PALETTE[2]},
            "customdata": values(df["hours"]), "hovertemplate": "%{x}: %{y:.1%} (%{customdata:,.1f} h)<extra></extra>"}
    return plain_fig([bars], {"yaxis": {"tickformat": ".0%"}}, "Top genres (share of hours)")


CHARTS = [
    Chart("kpis", kpi_cards, "children"),
    Chart("over-time", over_time),
    Chart("top-artists", top_artists),
    Chart("top-tracks", top_tracks),
    Chart("top-genres", top_genres),
]


def _click_period(app: Any, wh: Warehouse, viewer_of: Any = None) -> None:
    @app.callback(Output("f-start", "value", allow_duplicate=True), Output("f-end", "value", allow_duplicate=True),
                  Input("over-time", "clickData"), prevent_initial_call=True)
    def zoom(click: Any) -> Any:
        data = clicked(click, 2)  # a period bar carries [start, end, plays]
        if data is None:
            return no_update, no_update
        return parse_date(data[0], "start"), parse_date(data[1], "end")


CLICKS = [_click_period]

