"""Recommendations: one listener's list with the reason for each track, and the offline evaluation of every
method (the best one is the default). Under `tunelake serve` a listener sees their own list only; the evaluation,
made from every listener's plays, is for admins."""

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
    card,
    graph,
    guarded,
    layout_fig,
    table,
)

KEY, NAME, PATH = "recommendations", "Recommendations", "/recommendations"
NO_RECS = "No recommendations yet: run `tunelake recommend` (or `tunelake run`)"


def layout(viewer: Any = None) -> html.Div:
    mine = [card(html.H3(id="recs-title"), html.Div(id="recs-list"), width="full")]
    if viewer is not None and not viewer.is_admin:
        return html.Div([html.H1("Recommendations"), *mine], className="grid")
    return html.Div([
        html.H1("Recommendations"), *mine,
        card(graph("rec-metrics"), width="full"),
        card(html.H3("Offline evaluation (time split)"), html.Div(id="rec-evaluation"), width="full"),
    ], className="grid")


def _listener(wh: Warehouse, fs: FilterState) -> tuple[int | None, str]:
    """A listener's own key; for everyone's view the filtered listener, else the first listener (of the
    selected segment) that has recommendations."""
    users = wh.table("dim_user", "user_key, handle", order="handle")
    if fs.viewer is not None and not fs.viewer.is_admin:
        key: int | None = fs.viewer.user_key
    elif fs.user is not None:
        key = int(fs.user)
    else:
        keys = set(wh.table("recommendations", "DISTINCT user_key")["user_key"])
        if fs.segment is not None:
            seg = wh.table("user_segment", "user_key, segment")
            keys &= set(seg.loc[seg["segment"] == int(fs.segment), "user_key"])
        ordered = [k for k in users["user_key"] if k in keys]
        key = int(ordered[0]) if ordered else None
    handle = users.loc[users["user_key"] == key, "handle"]
    return key, (str(handle.iloc[0]) if len(handle) else "")


def recs_list(wh: Warehouse, fs: FilterState) -> object:
    if not wh.has("recommendations"):
        return html.P(NO_RECS, className="hint")
    key, handle = _listener(wh, fs)
    with wh.cursor() as cur:
        mine = cur.execute("""SELECT r.rank, t.track_name, t.artist_name, r.score, r.reason, r.method
                              FROM recommendations r LEFT JOIN dim_track t USING (track_id)
                              WHERE r.user_key = ? ORDER BY r.rank LIMIT 25""", [key]).df()
    title = f"Recommended for {handle}" if handle else "Recommended"
    everyone = fs.viewer is None or fs.viewer.is_admin
    note = html.P("Pick a listener in the filter bar to see their list." if fs.user is None and everyone else "",
                  className="hint")
    return html.Div([html.H4(title, id="recs-for"), note, table(mine, "recs-table", formats={"score": ".3f"})])


def recs_title(wh: Warehouse, fs: FilterState) -> str:
    best = _best_method(wh)
    return f"Recommendations (default method: {best})" if best else "Recommendations"


def _best_method(wh: Warehouse) -> str | None:
    ev = wh.table("rec_evaluation", "method, is_default")
    if ev.empty or not ev["is_default"].any():
        return None
    return str(ev.loc[ev["is_default"].astype(bool), "method"].iloc[0])


@guarded("Recommender evaluation")
def rec_metrics(wh: Warehouse, fs: FilterState) -> Fig:
    ev = wh.table("rec_evaluation")
    if ev.empty:
        raise EmptyResult(NO_RECS)
    k = int(ev["k"].iloc[0]) if "k" in ev.columns else 10
    if "users" in ev.columns and not int(ev["users"].max() or 0):
        raise EmptyResult("No listener has enough history to evaluate the recommenders yet.")
    metrics = [c for c in ("recall_at_k", "ndcg_at_k", "map_at_k", "coverage") if c in ev.columns]
    fig = go.Figure()
    for i, m in enumerate(metrics):
        fig.add_trace(go.Bar(x=ev["method"], y=ev[m], name=m.replace("_at_k", f"@{k}").replace("_", " "),
                             marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.2})
    return layout_fig(fig, "Offline evaluation by method")


def rec_evaluation(wh: Warehouse, fs: FilterState) -> object:
    ev = wh.table("rec_evaluation")
    if ev.empty:
        return html.P(NO_RECS, className="hint")
    drop = [c for c in ev.columns if c in ("run_id", "created_at")]
    ev = ev.drop(columns=drop)
    for c in ("test_start_min", "test_start_max"):
        if c in ev.columns:
            ev[c] = ev[c].astype(str).str.slice(0, 10).replace({"NaT": "", "None": ""})
    four = ("precision_at_k", "recall_at_k", "recall_low", "recall_high", "ndcg_at_k", "ndcg_low", "ndcg_high",
            "map_at_k", "map_low", "map_high", "coverage", "diversity", "val_ndcg", "delta_ndcg", "delta_low",
            "delta_high")
    return table(ev, "rec-evaluation-table", formats={c: ".4f" for c in four})


CHARTS = [
    Chart("recs-title", recs_title, "children"),
    Chart("recs-list", recs_list, "children"),
    Chart("rec-metrics", rec_metrics, admin_only=True),
    Chart("rec-evaluation", rec_evaluation, "children", admin_only=True),
]
