"""Listening patterns: when people listen (hour × weekday, local time), sessions, skips and completion,
platforms, streaks."""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import html

from tunelake.dashboard import FilterState, Warehouse
from tunelake.dashboard.pages.common import (
    PALETTE,
    Chart,
    EmptyResult,
    Fig,
    as_frame,
    card,
    graph,
    guarded,
    metric,
    plain_fig,
    table,
    values,
)

KEY, NAME, PATH = "patterns", "Listening patterns", "/patterns"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def layout(viewer: Any = None) -> html.Div:
    return html.Div([
        html.H1("Listening patterns"),
        card(graph("heatmap"), width="full"),
        card(graph("session-lengths")),
        card(html.H3("Sessions"), html.Div(id="session-stats"), html.H3("Longest streaks"),
             html.Div(id="streaks")),
        card(graph("skip-completion")),
        card(graph("platforms")),
    ], className="grid")


@guarded("Hour × weekday")
def heatmap(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("hour_weekday_heatmap", con, fs))
    if df.empty or df["plays"].sum() == 0:
        raise EmptyResult()
    grid = df.pivot(index="weekday", columns="hour", values="hours").reindex(index=range(1, 8), columns=range(24))
    heat = {"type": "heatmap", "z": [values(row) for row in grid.to_numpy()], "x": [f"{h:02d}" for h in range(24)],
            "y": list(WEEKDAYS), "colorscale": "Greens", "colorbar": {"title": {"text": "hours"}},
            "hovertemplate": "%{y} %{x}:00 — %{z:,.1f} h<extra></extra>"}
    return plain_fig([heat], {"yaxis": {"autorange": "reversed"}},
                     "When listening happens (local hour × weekday, hours)", height=320)


@guarded("Session lengths")
def session_lengths(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("sessions", con, fs))
    if df.empty:
        raise EmptyResult()
    minutes = df["duration_min"].clip(upper=240).to_numpy()
    counts, edges = np.histogram(minutes, bins=np.arange(0, 250, 10))
    bars = {"type": "bar", "x": values(edges[:-1] + 5), "y": values(counts), "width": 9,
            "marker": {"color": PALETTE[1]}, "hovertemplate": "%{x:.0f} min: %{y:,} sessions<extra></extra>"}
    layout = {"xaxis": {"title": {"text": "session length (minutes; 240 = 4 h or more)"}},
              "yaxis": {"title": {"text": "sessions"}}}
    return plain_fig([bars], layout, "Session lengths (a gap over 30 min starts a new session)")


def session_stats(wh: Warehouse, fs: FilterState) -> html.Div:
    with wh.cursor() as con:
        s = metric("session_stats", con, fs)
    rows = [("Sessions", s.get("sessions"), "{:,}"), ("Median plays per session", s.get("median_plays"), "{:,.0f}"),
            ("Median minutes per session", s.get("median_minutes"), "{:,.1f}"),
            ("Longest session (minutes)", s.get("longest_minutes"), "{:,.0f}"),
            ("Sessions per active day", s.get("sessions_per_active_day"), "{:,.2f}")]
    return html.Dl([el for label, v, fmt in rows for el in
                    (html.Dt(label), html.Dd("–" if v is None else fmt.format(v)))], className="stats",
                   id="session-stats-list")


def streaks(wh: Warehouse, fs: FilterState) -> html.Table:
    with wh.cursor() as con:
        df = as_frame(metric("streaks", con, fs)).head(8)
    users = wh.table("dim_user", "user_key, handle")
    if not df.empty:
        df = df.merge(users, on="user_key", how="left")[["handle", "start", "end", "days"]]
        df["start"] = df["start"].astype(str).str.slice(0, 10)
        df["end"] = df["end"].astype(str).str.slice(0, 10)
    return table(df, "streaks-table")


@guarded("Skips and completion")
def skip_completion(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("skip_completion", con, fs))
    if df.empty:
        raise EmptyResult()
    lines = [{"type": "scatter", "x": values(df["month"]), "y": values(df[col]), "name": name,
              "mode": "lines+markers", "line": {"color": color}}
             for col, name, color in (("skip_rate", "skip rate", PALETTE[2]),
                                      ("mean_completion", "mean completion", PALETTE[0]),
                                      ("full_listen_rate", "full listens (≥ 90 %)", PALETTE[1]))]
    layout = {"yaxis": {"tickformat": ".0%", "range": [0, 1]}, "legend": {"orientation": "h", "y": -0.2}}
    return plain_fig(lines, layout, "Skips and completion per month")


@guarded("Platforms")
def platforms(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("platforms", con, fs))
    if df.empty:
        raise EmptyResult()
    pie = {"type": "pie", "labels": values(df["platform"]), "values": values(df["plays"]), "hole": 0.5,
           "sort": False, "marker": {"colors": PALETTE}, "textinfo": "label+percent"}
    return plain_fig([pie], {}, "Platforms (share of plays)")


CHARTS = [
    Chart("heatmap", heatmap),
    Chart("session-lengths", session_lengths),
    Chart("session-stats", session_stats, "children"),
    Chart("streaks", streaks, "children"),
    Chart("skip-completion", skip_completion),
    Chart("platforms", platforms),
]
