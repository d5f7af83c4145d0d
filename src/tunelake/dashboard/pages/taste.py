"""Taste: genres, eras, the audio-feature profile, diversity, mainstreamness and discovery."""

from __future__ import annotations

from typing import Any

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
    metric,
    plain_fig,
    values,
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
    bars = {"type": "bar", "x": [f"{int(e)}s" for e in df["era"]], "y": values(df["share"]),
            "marker": {"color": PALETTE[3]}, "customdata": values(df["plays"]),
            "hovertemplate": "%{x}: %{y:.1%} (%{customdata:,} plays)<extra></extra>"}
    return plain_fig([bars], {"yaxis": {"tickformat": ".0%"}}, "Eras (release decade, share of plays)")


@guarded("Audio profile")
def audio_profile(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        prof = metric("audio_profile", con, fs)
    feats = [f for f in UNIT_FEATURES if prof.get(f) is not None]
    if not feats:
        raise EmptyResult("No audio features known for these plays")
    vals = [prof[f] for f in feats]
    polar = {"type": "scatterpolar", "r": vals + vals[:1], "theta": feats + feats[:1], "fill": "toself",
             "line": {"color": PALETTE[0]}, "name": "profile"}
    cov = prof.get("coverage")
    tempo = prof.get("tempo")
    sub = f"features known for {cov:.0%} of plays" if cov is not None else ""
    if tempo is not None:
        sub += f" · tempo {tempo:.0f} BPM"
    return plain_fig([polar], {"polar": {"radialaxis": {"range": [0, 1]}}, "showlegend": False},
                     f"Audio-feature profile<br><sup>{sub}</sup>")


def _gauge(column: int, value: Any, title: str, top: float, color: str, fmt: str) -> dict[str, Any]:
    return {"type": "indicator", "mode": "gauge+number", "value": value,
            "title": {"text": title, "font": {"size": 13}}, "number": {"valueformat": fmt},
            "domain": {"row": 0, "column": column}, "gauge": {"axis": {"range": [0, top]}, "bar": {"color": color}}}


@guarded("Diversity and mainstreamness")
def diversity(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        div = metric("diversity", con, fs)
        main = metric("mainstreamness", con, fs)
    if not div.get("artists"):
        raise EmptyResult()
    gauges = [
        _gauge(0, div["artist_entropy_bits"], "artists (entropy, bits)", max(div["artist_entropy_max_bits"], 1),
              PALETTE[0], ".2f"),
        _gauge(1, div["genre_entropy_bits"],
              "genres (entropy, bits)" if div["genres"] else "genres: unknown (no genre known)",
              max(div["genre_entropy_max_bits"] or 0, 1), PALETTE[1], ".2f"),
        _gauge(2, main.get("mean_popularity"),
              "mainstreamness (0–100)" if main.get("mean_popularity") is not None
              else "mainstreamness: unknown (no popularity known)", 100, PALETTE[2], ".1f"),
    ]
    title = f"Diversity and mainstreamness ({div['artists']:,} artists, {div['genres']:,} genres)"
    return plain_fig(gauges, {"grid": {"rows": 1, "columns": 3}}, title, height=300)


@guarded("Discovery")
def discovery(wh: Warehouse, fs: FilterState) -> Fig:
    with wh.cursor() as con:
        df = as_frame(metric("discovery_rate", con, fs))
    if df.empty:
        raise EmptyResult()
    lines = [{"type": "scatter", "x": values(df["month"]), "y": values(df[col]), "name": name,
              "mode": "lines+markers", "line": {"color": color}}
             for col, name, color in (("artist_discovery_rate", "new artists", PALETTE[4]),
                                      ("track_discovery_rate", "new tracks", PALETTE[1]))]
    layout = {"yaxis": {"tickformat": ".0%", "rangemode": "tozero"}, "legend": {"orientation": "h", "y": -0.2}}
    return plain_fig(lines, layout, "Discovery rate (share of plays of artists/tracks first heard that month)")


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
