"""Segments: the listeners' 2-D map coloured by segment, segment sizes, profiles and the choice of k.
Clicking a segment on the map or on the sizes bar sets the global segment filter."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, html, no_update

from tunelake.dashboard import FilterState, Warehouse, clicked, parse_key
from tunelake.dashboard.pages.common import (
    PALETTE,
    Chart,
    EmptyResult,
    Fig,
    card,
    graph,
    guarded,
    layout_fig,
    table,
)
from tunelake.report.format import profile_summary

KEY, NAME, PATH = "segments", "Segments", "/segments"
ADMIN_ONLY = True  # every listener's data: `tunelake serve` shows it to admins only
NO_SEGMENTS = "No segments yet: run `tunelake segment` (or `tunelake run`)"


def pick(df: pd.DataFrame, *names: str) -> str | None:
    """The first of `names` that `df` has (the analytics tables name their projection columns x/y)."""
    return next((n for n in names if n in df.columns), None)


def user_segments(wh: Warehouse) -> pd.DataFrame:
    df = wh.table("user_segment")
    if df.empty:
        return df
    users = wh.table("dim_user", "user_key, handle")
    return df.merge(users, on="user_key", how="left")


def segment_names(wh: Warehouse) -> dict[int, str]:
    df = wh.table("user_segment")
    if df.empty or "segment" not in df.columns:
        return {}
    name = pick(df, "segment_name", "name")
    pairs = df[["segment"] + ([name] if name else [])].drop_duplicates("segment").sort_values("segment")
    return {int(r[0]): (str(r[1]) if name else f"segment {r[0]}") for r in pairs.itertuples(index=False)}


def layout(viewer: Any = None) -> html.Div:
    return html.Div([
        html.H1("Segments"),
        card(graph("segment-map"), html.P("Click a listener's point or a bar to filter by segment.",
                                           className="hint")),
        card(graph("segment-sizes")),
        card(graph("segment-heatmap"), width="full"),
        card(html.H3("Segment profiles"), html.Div(id="segment-profiles"), width="full"),
        card(graph("segment-selection")),
        card(html.H3("How the segmentation was chosen"), html.Div(id="segment-stability")),
    ], className="grid")


@guarded("Listener map")
def segment_map(wh: Warehouse, fs: FilterState) -> Fig:
    df = user_segments(wh)
    if df.empty:
        raise EmptyResult(NO_SEGMENTS)
    x, y = pick(df, "x", "pc1", "proj_x", "map_x"), pick(df, "y", "pc2", "proj_y", "map_y")
    if not (x and y):
        raise EmptyResult("The segmentation stored no 2-D projection")
    names = segment_names(wh)
    fig = go.Figure()
    for i, (seg, part) in enumerate(df.groupby("segment", sort=True)):
        selected = fs.segment is None or int(seg) == int(fs.segment)
        highlight = fs.user is not None and (part["user_key"] == int(fs.user)).any()
        fig.add_trace(go.Scatter(
            x=part[x], y=part[y], mode="markers", name=f"{seg} · {names.get(int(seg), '')}",
            marker={"size": 11 if selected else 7, "color": PALETTE[i % len(PALETTE)],
                    "opacity": 0.9 if selected else 0.2,
                    "line": {"width": 2 if highlight else 0.5, "color": "#222" if highlight else "white"}},
            customdata=[[int(seg), h] for h in part["handle"].astype(str)],
            hovertemplate="%{customdata[1]}<br>segment %{customdata[0]}<extra></extra>",
        ))
    fig.update_layout(legend={"orientation": "h", "y": -0.15}, xaxis={"title": "component 1"},
                      yaxis={"title": "component 2"})
    return layout_fig(fig, "Listeners in 2-D, coloured by segment", height=420)


@guarded("Segment sizes")
def segment_sizes(wh: Warehouse, fs: FilterState) -> Fig:
    df = wh.table("user_segment")
    if df.empty:
        raise EmptyResult(NO_SEGMENTS)
    names = segment_names(wh)
    sizes = df.groupby("segment").size().sort_index()
    colors = [PALETTE[i % len(PALETTE)] if fs.segment is None or int(s) == int(fs.segment) else "#d0d0d0"
              for i, s in enumerate(sizes.index)]
    fig = go.Figure(go.Bar(
        x=[f"{s} · {names.get(int(s), '')}" for s in sizes.index], y=sizes.values, marker_color=colors,
        customdata=[[int(s)] for s in sizes.index], hovertemplate="%{x}: %{y} listeners<extra></extra>"))
    fig.update_yaxes(title="listeners")
    return layout_fig(fig, "Segment sizes", height=420)


def segment_profiles(wh: Warehouse, fs: FilterState) -> html.Div:
    prof = wh.table("segment_profile")
    if prof.empty:
        return html.P(NO_SEGMENTS, className="hint")
    df = profile_summary(prof)
    if fs.segment is not None:
        df = df[df["segment"] == int(fs.segment)]
    return table(df, "segment-profiles-table", formats={"share": ".1%"})


@guarded("Segment profiles")
def profile_heatmap(wh: Warehouse, fs: FilterState) -> Fig:
    prof = wh.table("segment_profile")
    if prof.empty:
        raise EmptyResult(NO_SEGMENTS)
    grid = prof.pivot_table(index="segment", columns="feature", values="z_score", aggfunc="first").sort_index()
    # the features that separate segments most, so the heatmap stays readable
    keep = grid.abs().max().sort_values(ascending=False).head(14).index
    grid = grid[keep]
    names = segment_names(wh)
    fig = go.Figure(go.Heatmap(z=grid.values, x=list(grid.columns), y=[f"{s} · {names.get(int(s), '')}"
                                                                       for s in grid.index],
                               colorscale="RdBu", reversescale=True, zmid=0, colorbar={"title": "z"},
                               hovertemplate="%{y}<br>%{x}: %{z:+.2f} σ<extra></extra>"))
    fig.update_xaxes(tickangle=-35)
    fig.update_yaxes(autorange="reversed", automargin=True)
    return layout_fig(fig, "Segment profiles (feature z-scores against all listeners)", height=380)


def analytics_detail(wh: Warehouse, key: str) -> float | None:
    """A figure the latest analytics step recorded in the run log (stability, agreement with planted types)."""
    import json

    runs = wh.table("meta_run", "step, details, started_at", order="started_at DESC")
    for step, details, _ in runs.itertuples(index=False) if not runs.empty else []:
        if step != "analytics" or not details:
            continue
        try:
            d = json.loads(details)
        except (TypeError, ValueError):
            continue
        for part in (d, d.get("segments") if isinstance(d, dict) else None):
            if isinstance(part, dict) and isinstance(part.get(key), int | float) and part.get(key) is not True:
                return float(part[key])
    return None


@guarded("Choice of k")
def segment_selection(wh: Warehouse, fs: FilterState) -> Fig:
    df = wh.table("segment_selection")
    if df.empty:
        raise EmptyResult(NO_SEGMENTS)
    k = pick(df, "k", "n_clusters")
    fig = go.Figure()
    for i, col in enumerate(c for c in ("silhouette", "stability", "stability_ari") if c in df.columns):
        fig.add_trace(go.Scatter(x=df[k], y=df[col], name=col.replace("_", " "), mode="lines+markers",
                                 line={"color": PALETTE[i]}))
    if "inertia" in df.columns:
        fig.add_trace(go.Scatter(x=df[k], y=df["inertia"], name="inertia (elbow)", yaxis="y2", mode="lines",
                                 line={"dash": "dot", "color": "#888"}))
        fig.update_layout(yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "title": "inertia"})
    chosen = pick(df, "chosen", "selected", "is_chosen")
    if chosen and df[chosen].any():
        kc = df.loc[df[chosen].astype(bool), k].iloc[0]
        fig.add_vline(x=kc, line_dash="dash", line_color=PALETTE[2], annotation_text=f"k = {kc}")
    fig.update_layout(xaxis={"title": "k", "dtick": 1}, legend={"orientation": "h", "y": -0.2})
    return layout_fig(fig, "Choice of k (silhouette, stability across seeds)")


def segment_stability(wh: Warehouse, fs: FilterState) -> html.Div:
    df = wh.table("segment_selection", order="k")
    if df.empty:
        return html.P(NO_SEGMENTS, className="hint")
    chosen = df.loc[df["chosen"].astype(bool), "k"] if "chosen" in df.columns else pd.Series(dtype=int)
    stab, truth = analytics_detail(wh, "stability"), analytics_detail(wh, "ari_vs_truth")
    lines = [f"k = {int(chosen.iloc[0])} chosen by the highest silhouette" if len(chosen) else "k fixed by the user"]
    if stab is not None:
        lines.append(f"stability: mean adjusted Rand index {stab:.3f} across refits with other seeds")
    if truth is not None:
        lines.append(f"agreement with the synthetic world's planted listener types: ARI {truth:.3f}")
    drop = [c for c in df.columns if c in ("run_id", "created_at")]
    return html.Div([html.P(" · ".join(lines), id="segment-choice"),
                     table(df.drop(columns=drop), "segment-selection-table",
                           formats={"silhouette": ".3f", "inertia": ",.0f", "calinski_harabasz": ",.1f"})])


CHARTS = [
    Chart("segment-map", segment_map),
    Chart("segment-sizes", segment_sizes),
    Chart("segment-heatmap", profile_heatmap),
    Chart("segment-profiles", segment_profiles, "children"),
    Chart("segment-selection", segment_selection),
    Chart("segment-stability", segment_stability, "children"),
]


def _segment_of(wh: Warehouse, click: Any) -> Any:
    data = clicked(click, 1)  # a map point carries [segment, handle], a size bar [segment]
    if data is None:
        return no_update
    return FilterState(segment=parse_key(data[0], "segment")).checked(wh).segment


def _click_segment(app: Any, wh: Warehouse, viewer_of: Any = None) -> None:
    @app.callback(Output("f-segment", "value", allow_duplicate=True), Input("segment-map", "clickData"),
                  prevent_initial_call=True)
    def from_map(click: Any) -> Any:
        return _segment_of(wh, click)

    @app.callback(Output("f-segment", "value", allow_duplicate=True), Input("segment-sizes", "clickData"),
                  prevent_initial_call=True)
    def from_sizes(click: Any) -> Any:
        return _segment_of(wh, click)


CLICKS = [_click_segment]
