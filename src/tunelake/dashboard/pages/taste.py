"""Taste: genres, eras, the audio-feature profile, diversity, mainstreamness and discovery."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
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
    hbar,
    layout_fig,
    metric,
)

KEY, NAME, PATH = "taste", "Taste", "/taste"
UNIT_FEATURES = ("danceability", "energy", "valence", "acousticness", "instrumentalness", "speechiness", "liveness")


def layout(viewer: Any = None) -> html.Div:
    return html.Div([
        html.H1("Taste"),
        card(graph("genres")),
        card(graph("eras")),
        card(graph("audio-profile")),
        card(graph("diversity")),
        card(graph("discovery")),
        card(graph("top-albums")),
    ], className="grid")


@guarded("Genres")
def genres(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("top_genres", con, fs, 12))
    return hbar(df, "genre", "hours", "Genres (hours)", "genres")


@guarded("Eras")
def eras(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("eras", con, fs, by="decade"))
    if df.empty:
        raise EmptyResult("No release years known for these plays")
    fig = go.Figure(go.Bar(x=[f"{int(e)}s" for e in df["era"]], y=df["share"], marker_color=PALETTE[3],
                           customdata=df["plays"],
                           hovertemplate="%{x}: %{y:.1%} (%{customdata:,} plays)<extra></extra>"))
    fig.update_yaxes(tickformat=".0%")
    return layout_fig(fig, "Eras (release decade, share of plays)")


@guarded("Audio profile")
def audio_profile(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        prof = metric("audio_profile", con, fs)
    feats = [f for f in UNIT_FEATURES if prof.get(f) is not None]
    if not feats:
        raise EmptyResult("No audio features known for these plays")
    values = [prof[f] for f in feats]
    fig = go.Figure(go.Scatterpolar(r=values + values[:1], theta=feats + feats[:1], fill="toself",
                                    line={"color": PALETTE[0]}, name="profile"))
    cov = prof.get("coverage")
    tempo = prof.get("tempo")
    sub = f"features known for {cov:.0%} of plays" if cov is not None else ""
    if tempo is not None:
        sub += f" · tempo {tempo:.0f} BPM"
    fig.update_layout(polar={"radialaxis": {"range": [0, 1]}}, showlegend=False)
    return layout_fig(fig, f"Audio-feature profile<br><sup>{sub}</sup>")


@guarded("Diversity and mainstreamness")
def diversity(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        div = metric("diversity", con, fs)
        main = metric("mainstreamness", con, fs)
    if not div.get("artists"):
        raise EmptyResult()
    fig = go.Figure()
    fig.add_trace(go.Indicator(
        mode="gauge+number", value=div["artist_entropy_bits"],
        title={"text": "artists (entropy, bits)", "font": {"size": 13}},
        number={"valueformat": ".2f"}, domain={"row": 0, "column": 0},
        gauge={"axis": {"range": [0, max(div["artist_entropy_max_bits"], 1)]}, "bar": {"color": PALETTE[0]}}))
    fig.add_trace(go.Indicator(
        mode="gauge+number", value=div["genre_entropy_bits"],
        title={"text": "genres (entropy, bits)" if div["genres"] else "genres: unknown (no genre known)",
               "font": {"size": 13}},
        number={"valueformat": ".2f"}, domain={"row": 0, "column": 1},
        gauge={"axis": {"range": [0, max(div["genre_entropy_max_bits"] or 0, 1)]}, "bar": {"color": PALETTE[1]}}))
    fig.add_trace(go.Indicator(
        mode="gauge+number", value=main.get("mean_popularity"),
        title={"text": "mainstreamness (0–100)" if main.get("mean_popularity") is not None
               else "mainstreamness: unknown (no popularity known)", "font": {"size": 13}},
        number={"valueformat": ".1f"}, domain={"row": 0, "column": 2},
        gauge={"axis": {"range": [0, 100]}, "bar": {"color": PALETTE[2]}}))
    fig.update_layout(grid={"rows": 1, "columns": 3})
    return layout_fig(fig, f"Diversity and mainstreamness ({div['artists']:,} artists, {div['genres']:,} genres)",
                      height=300)


@guarded("Discovery")
def discovery(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("discovery_rate", con, fs))
    if df.empty:
        raise EmptyResult()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=df["month"], y=df["artist_discovery_rate"], name="new artists", mode="lines+markers",
                             line={"color": PALETTE[4]}))
    fig.add_trace(go.Scatter(x=df["month"], y=df["track_discovery_rate"], name="new tracks", mode="lines+markers",
                             line={"color": PALETTE[1]}))
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_layout(legend={"orientation": "h", "y": -0.2})
    return layout_fig(fig, "Discovery rate (share of plays of artists/tracks first heard that month)")


@guarded("Top albums")
def top_albums(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("top_albums", con, fs, 10))
    if not df.empty:
        df["label"] = df["album_name"].astype(str).str.slice(0, 30) + " · " + df["artist_name"].astype(str)
    return hbar(df, "label", "hours", "Top albums (hours)", "top-albums", customdata="album_id")


CHARTS = [
    Chart("genres", genres),
    Chart("eras", eras),
    Chart("audio-profile", audio_profile),
    Chart("diversity", diversity),
    Chart("discovery", discovery),
    Chart("top-albums", top_albums),
]
