"""Recommendations: one listener's list with the reason for each track, and the offline evaluation of every
method (the best one is the default)."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import html

from tunelake.dashboard import FilterState, Warehouse
from tunelake.dashboard.pages.common import PALETTE, Chart, EmptyResult, card, graph, guarded, layout_fig, table
from tunelake.dashboard.pages.segments import pick

KEY, NAME, PATH = "recommendations", "Recommendations", "/recommendations"
NO_RECS = "No recommendations yet: run `tunelake recommend` (or `tunelake run`)"


def layout() -> html.Div:
    return html.Div([
        html.H1("Recommendations"),
        card(html.H3(id="recs-title"), html.Div(id="recs-list"), width="full"),
        card(graph("rec-metrics"), width="full"),
        card(html.H3("Offline evaluation (time split)"), html.Div(id="rec-evaluation"), width="full"),
    ], className="grid")


def _listener(wh: Warehouse, fs: FilterState, recs: object) -> tuple[int | None, str]:
    users = wh.table("dim_user", "user_key, handle", order="handle")
    if fs.user is not None:
        key = int(fs.user)
    else:
        # first listener of the selected segment (or of all) that has recommendations
        keys = set(recs["user_key"])  # type: ignore[index]
        if fs.segment is not None:
            seg = wh.table("user_segment", "user_key, segment")
            keys &= set(seg.loc[seg["segment"] == int(fs.segment), "user_key"])
        ordered = [k for k in users["user_key"] if k in keys]
        key = int(ordered[0]) if ordered else None
    handle = users.loc[users["user_key"] == key, "handle"]
    return key, (str(handle.iloc[0]) if len(handle) else "")


def recs_list(wh: Warehouse, fs: FilterState) -> object:
    recs = wh.table("recommendations")
    if recs.empty:
        return html.P(NO_RECS, className="hint")
    key, handle = _listener(wh, fs, recs)
    mine = recs[recs["user_key"] == key] if key is not None else recs.iloc[0:0]
    method = pick(mine, "method")
    if method and "is_default" in mine.columns and mine["is_default"].any():
        mine = mine[mine["is_default"].astype(bool)]
    elif method and not mine.empty:
        best = _best_method(wh)
        if best and (mine[method] == best).any():
            mine = mine[mine[method] == best]
    rank = pick(mine, "rank", "position")
    if rank:
        mine = mine.sort_values(rank)
    tracks = wh.table("dim_track", "track_id, track_name, artist_name")
    if "track_id" in mine.columns and "track_name" not in mine.columns:
        mine = mine.merge(tracks, on="track_id", how="left")
    cols = [c for c in (rank, "track_name", "artist_name", "score", "reason", method) if c and c in mine.columns]
    title = f"Recommended for {handle}" if handle else "Recommended"
    note = html.P("Pick a listener in the filter bar to see their list." if fs.user is None else "",
                  className="hint")
    return html.Div([html.H4(title, id="recs-for"), note, table(mine[cols].head(25), "recs-table",
                                                                formats={"score": ".3f"})])


def recs_title(wh: Warehouse, fs: FilterState) -> str:
    best = _best_method(wh)
    return f"Recommendations (default method: {best})" if best else "Recommendations"


def _best_method(wh: Warehouse) -> str | None:
    ev = wh.table("rec_evaluation")
    if ev.empty or "method" not in ev.columns:
        return None
    flag = pick(ev, "is_best", "best", "is_default")
    if flag and ev[flag].astype(bool).any():
        return str(ev.loc[ev[flag].astype(bool), "method"].iloc[0])
    ndcg = pick(ev, "ndcg_at_k", "ndcg_at_10", "ndcg")
    return str(ev.sort_values(ndcg, ascending=False)["method"].iloc[0]) if ndcg else None


@guarded("Recommender evaluation")
def rec_metrics(wh: Warehouse, fs: FilterState) -> go.Figure:
    ev = wh.table("rec_evaluation")
    if ev.empty:
        raise EmptyResult(NO_RECS)
    k = int(ev["k"].iloc[0]) if "k" in ev.columns else 10
    metrics = [c for c in ("precision_at_k", "recall_at_k", "ndcg_at_k", "coverage") if c in ev.columns]
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
    if "holdout_start" in ev.columns:
        ev["holdout_start"] = ev["holdout_start"].astype(str).str.slice(0, 10)
    return table(ev, "rec-evaluation-table", formats={c: ".4f" for c in ("precision_at_k", "recall_at_k",
                                                                           "ndcg_at_k", "coverage")})


CHARTS = [
    Chart("recs-title", recs_title, "children"),
    Chart("recs-list", recs_list, "children"),
    Chart("rec-metrics", rec_metrics),
    Chart("rec-evaluation", rec_evaluation, "children"),
]
