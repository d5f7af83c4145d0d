"""Data quality: what was imported (the lake manifest), what was quarantined and why, the pipeline run log and
the quality gates of the last build."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, html

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
from tunelake.report.format import gate_summary

KEY, NAME, PATH = "quality", "Data quality", "/quality"
ADMIN_ONLY = True  # every listener's data: `tunelake serve` shows it to admins only


def layout(viewer: Any = None) -> html.Div:
    return html.Div([
        html.H1("Data quality"),
        html.Div(id="quality-kpis", className="kpis"),
        card(graph("imports")),
        card(graph("quarantine")),
        card(html.H3("Connected listeners (the collector)"), html.Div(id="collector-state"), width="full"),
        card(html.H3("Open gaps in listening histories"), html.Div(id="open-gaps"), width="full"),
        card(html.H3("Quality gates (last build)"), html.Div(id="quality-gates"), width="full"),
        card(html.H3("Pipeline run log"), html.Div(id="run-log"), width="full"),
    ], className="grid")


def batches(wh: Warehouse, fs: FilterState) -> pd.DataFrame:
    """Manifest batches as a frame (the listener filter applies; dates do not: an import has no listening date)."""
    df = wh.batches()
    if fs.user is not None and not df.empty:
        df = df[df["user_key"] == int(fs.user)]
    return df


def quality_kpis(wh: Warehouse, fs: FilterState) -> list[html.Div]:
    df = batches(wh, fs)
    summary, _ = gate_summary(wh.table("meta_quality"))
    failing = int(summary["not_passed"].sum()) if not summary.empty else 0
    values = [("batches", "Import batches", len(df)), ("read", "Records read", int(df["read"].sum()) if len(df) else 0),
              ("accepted", "Accepted", int(df["accepted"].sum()) if len(df) else 0),
              ("duplicates", "Duplicates", int(df["duplicates"].sum()) if len(df) else 0),
              ("quarantined", "Quarantined", int(df["quarantined_total"].sum()) if len(df) else 0),
              ("gates-failing", "Quality gates not passing", failing)]
    return [html.Div([html.Div(f"{v:,}", className="kpi-value"), html.Div(label, className="kpi-label")],
                     id=f"kpi-{key}", className="kpi", **{"data-value": str(v)}) for key, label, v in values]


@guarded("Imports")
def imports(wh: Warehouse, fs: FilterState) -> Fig:
    df = batches(wh, fs)
    if df.empty:
        raise EmptyResult("No imports recorded in the lake manifest")
    by = df.groupby("source")[["accepted", "duplicates", "merged", "quarantined_total", "excluded"]].sum()
    fig = go.Figure()
    for i, col in enumerate(by.columns):
        fig.add_trace(go.Bar(x=by.index, y=by[col], name=col.replace("_total", ""),
                             marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(barmode="stack", legend={"orientation": "h", "y": -0.2})
    return layout_fig(fig, f"Imported records by source ({len(df):,} batches)")


@guarded("Quarantine")
def quarantine(wh: Warehouse, fs: FilterState) -> Fig:
    df = batches(wh, fs)
    reasons: dict[str, int] = {}
    for q in df["quarantined"] if not df.empty else []:
        for reason, n in (q or {}).items():
            reasons[reason] = reasons.get(reason, 0) + int(n)
    if not reasons:
        fig = go.Figure(go.Bar(x=["(none)"], y=[0], marker_color=PALETTE[0]))
        fig.add_annotation(text="Nothing quarantined", showarrow=False, x=0.5, y=0.6, xref="paper", yref="paper",
                           font={"size": 14, "color": "#555"})
        fig.update_yaxes(range=[0, 1], showticklabels=False)
        return layout_fig(fig, "Quarantined records by reason")
    s = pd.Series(reasons).sort_values(ascending=False)
    fig = go.Figure(go.Bar(x=s.index, y=s.values, marker_color=PALETTE[2],
                           hovertemplate="%{x}: %{y:,}<extra></extra>"))
    return layout_fig(fig, "Quarantined records by reason")


def quality_gates(wh: Warehouse, fs: FilterState) -> object:
    summary, failed = gate_summary(wh.table("meta_quality"))
    if summary.empty:
        return html.P("No quality checks recorded yet (run `tunelake build` or `tunelake run`).", className="hint")
    total, bad = int(summary["passed"].sum() + summary["not_passed"].sum()), int(summary["not_passed"].sum())
    head = html.P(f"{total - bad:,} of {total:,} checks passed" + (f"; {bad:,} did not:" if bad else "."),
                  id="quality-gates-summary", className="bad" if bad else "good")
    parts = [head, table(summary, "quality-gates-table")]
    if bad:
        parts.insert(1, table(failed, "quality-gates-failed"))
    return html.Div(parts)


def open_gaps(wh: Warehouse, fs: FilterState) -> object:
    """Windows the Web API may have lost (meta_gap), each with the fix: the listener's export covers them."""
    gaps = wh.table("meta_gap", order="gap_end")
    users = wh.table("dim_user", "user_key, handle")
    if not gaps.empty:
        gaps = gaps[gaps["status"] == "open"]
    if gaps.empty:
        return html.P("No open gaps: every connected listener's history is complete as far as the API can tell.",
                      id="open-gaps-summary", className="good")
    df = gaps.merge(users, on="user_key", how="left")
    df["from"] = df["gap_start"].astype(str).str.slice(0, 19).replace({"NaT": "the beginning"})
    df["to"] = df["gap_end"].astype(str).str.slice(0, 19)
    df["fix"] = "import " + df["handle"].astype(str) + "'s Extended streaming history: `tunelake import <zip> --user " \
        + df["handle"].astype(str) + "`"
    return html.Div([html.P(f"{len(df):,} open gap(s): plays in these windows may be missing.",
                            id="open-gaps-summary", className="bad"),
                     table(df[["handle", "from", "to", "fix"]], "open-gaps-table")])


def collector_state(wh: Warehouse) -> object:
    """Each connected listener's last poll, plays collected and token state, with what to do when the token
    needs attention (14 days before Spotify's 6-month refresh-token expiry, or once refused). Read from the lake
    and the token files on every request, not from the warehouse: a token can fail between two builds."""
    from tunelake.curate.listener_state import listeners_status

    rows = listeners_status(wh.ws)
    if not rows:
        return html.P("No listener is connected to Spotify (`tunelake auth login --user NAME`, or Connect Spotify "
                      "on the account page of `tunelake serve`).", id="collector-summary", className="hint")
    df = pd.DataFrame([{"listener": r["handle"], "last poll": (r["last_poll_at"] or "never")[:19],
                        "next poll": (r["next_poll_at"] or "")[:19], "plays collected": r["plays_collected"],
                        "token": r["token"]["state"], "to do": r["token"].get("message", "")} for r in rows])
    attention = int((~df["token"].isin(["ok"])).sum())
    head = html.P(f"{len(df):,} listener(s); {attention:,} token(s) need attention." if attention else
                  f"{len(df):,} listener(s); every token is good.", id="collector-summary",
                  className="bad" if attention else "good")
    return html.Div([head, table(df, "collector-table")])


def _register_collector(app: Any, wh: Warehouse, viewer_of: Any = None) -> None:
    @app.callback(Output("collector-state", "children"), Input("filters", "data"))
    def fill_collector(data: Any) -> Any:
        # an admin page: the serve gate refuses a listener's request for this component before it gets here
        FilterState.from_store(data).checked(wh, viewer_of() if viewer_of else None)
        return collector_state(wh)


def run_log(wh: Warehouse, fs: FilterState) -> object:
    df = wh.table("meta_run", order="started_at DESC" if wh.has("meta_run") else "")
    if df.empty:
        return html.P("No pipeline runs recorded yet (`tunelake run` records one row per step).", className="hint")
    for c in ("started_at", "ended_at"):
        if c in df.columns:
            df[c] = df[c].astype(str).str.slice(0, 19)
    return table(df.drop(columns=[c for c in ("details",) if c in df.columns]).head(60), "run-log-table")


CHARTS = [
    Chart("quality-kpis", quality_kpis, "children"),
    Chart("imports", imports),
    Chart("quarantine", quarantine),
    Chart("open-gaps", open_gaps, "children"),
    Chart("quality-gates", quality_gates, "children"),
    Chart("run-log", run_log, "children"),
]
CLICKS = [_register_collector]
