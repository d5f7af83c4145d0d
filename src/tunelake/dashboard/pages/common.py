"""What every page shares: the chart registry, the call into the metric layer, and figure helpers that turn an
empty result into a readable "no data" panel instead of a blank axis."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html

from tunelake.dashboard import FilterState, Warehouse
from tunelake.report.format import format_cell

Fig = dict[str, Any]  # a Plotly figure as plain JSON-ready dict (see layout_fig)
PALETTE = ["#1db954", "#2e77d0", "#e8115b", "#f59b23", "#9b59b6", "#148a08", "#509bf5", "#ff6437", "#af2896",
           "#8d67ab", "#27856a", "#e91429"]


@dataclass(frozen=True)
class Chart:
    """One output of a page and the function that fills it from the warehouse and the filters."""

    id: str
    fn: Callable[[Warehouse, FilterState], Any]
    prop: str = "figure"
    admin_only: bool = False  # every listener's data on a page listeners see too (the recommender evaluation)


class MetricUnavailable(Exception):
    """The metric layer does not offer this metric (yet)."""


def metric(name: str, con: Any, fs: FilterState, *args: Any, **kwargs: Any) -> Any:
    """Call `tunelake.analytics.insights.<name>(con, filters, ...)`, the one definition of every metric."""
    from tunelake.analytics import insights

    fn = getattr(insights, name, None)
    if fn is None:
        raise MetricUnavailable(name)
    return fn(con, fs.to_filters(), *args, **kwargs)


def as_frame(value: Any) -> pd.DataFrame:
    if value is None:
        return pd.DataFrame()
    if isinstance(value, pd.DataFrame):
        return value
    if hasattr(value, "to_pandas"):
        return value.to_pandas()
    if isinstance(value, dict):
        return pd.DataFrame([value])
    return pd.DataFrame(value)


def as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, pd.DataFrame):
        return value.iloc[0].to_dict() if len(value) else {}
    if hasattr(value, "_asdict"):
        return value._asdict()
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    return dict(value)


_AXIS = {"gridcolor": "#ebf0f8", "linecolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "automargin": True}
BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 50, "r": 20, "t": 45, "b": 40}, "colorway": PALETTE, "plot_bgcolor": "white",
    "paper_bgcolor": "white", "font": {"family": "Inter, Helvetica, Arial, sans-serif", "size": 12,
                                       "color": "#2a3f5f"},
    "xaxis": _AXIS, "yaxis": _AXIS, "hoverlabel": {"align": "left"},
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def layout_fig(fig: go.Figure, title: str = "", height: int = 340) -> dict[str, Any]:
    """The figure as a plain dict with the house style. Styling a validated go.Figure (and above all assigning a
    template) costs tens of milliseconds per chart; merging plain dicts costs microseconds, which matters for a
    dashboard whose every callback must answer in well under 300 ms."""
    # the figure's own validated dicts, read once: `to_plotly_json` deep-copies every array (a third of a chart's
    # cost), and the figure is dropped right after
    data, layout = getattr(fig, "_data", None), getattr(fig, "_layout", None)
    if not isinstance(data, list) or not isinstance(layout, dict):  # should plotly ever store them otherwise
        data, layout = [t.to_plotly_json() for t in fig.data], fig.layout.to_plotly_json()
    return plain_fig(data, {k: v for k, v in layout.items() if k != "template"}, title, height)


def plain_fig(data: list[dict[str, Any]], layout: dict[str, Any], title: str = "", height: int = 340) -> dict[str, Any]:
    """A figure from plain trace and layout dicts (no plotly objects, no validation), with the house style."""
    layout = _merge(BASE_LAYOUT, layout)
    layout.update(title={"text": title, "x": 0.01, "font": {"size": 15}}, height=height)
    return {"data": data, "layout": layout}


def empty_fig(title: str, message: str = "No data for these filters") -> Fig:
    hidden = {"visible": False}
    return plain_fig([], {"annotations": [{"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper",
                                           "yref": "paper", "font": {"size": 14, "color": "#888"}}],
                          "xaxis": hidden, "yaxis": hidden}, title)


def values(series: Any) -> list[Any]:
    """A column as JSON-ready values for a plain trace: numbers as Python numbers, missing as None (Plotly's gap),
    dates as ISO strings (what Plotly's own encoder makes of them)."""
    s = pd.Series(series)
    if pd.api.types.is_datetime64_any_dtype(s):
        return [None if pd.isna(v) else v.isoformat() for v in s]
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in s.tolist()]


def guarded(title: str) -> Callable[[Callable[..., Fig]], Callable[..., Fig]]:
    """Turn a missing metric or table into an explanatory empty panel (the dashboard must not break because an
    optional step, such as segmentation, has not run)."""

    def deco(fn: Callable[..., Fig]) -> Callable[..., Fig]:
        def wrapper(wh: Warehouse, fs: FilterState) -> Fig:
            try:
                return fn(wh, fs)
            except MetricUnavailable as exc:
                return empty_fig(title, f"Metric {exc} is not available in this version")
            except EmptyResult as exc:
                return empty_fig(title, str(exc) or "No data for these filters")

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper

    return deco


class EmptyResult(Exception):
    """Nothing to draw (filters exclude everything, or the producing step has not run)."""


def hbar(df: pd.DataFrame, label: str, value: str, title: str, chart_id: str, hover: str | None = None,
         customdata: str | None = None) -> Fig:
    """Ranked horizontal bars, largest at the top; `customdata` carries the key a click filters on."""
    if df.empty:
        raise EmptyResult()
    df = df.iloc[::-1]
    bar: dict[str, Any] = {"type": "bar", "x": df[value].tolist(), "y": df[label].astype(str).tolist(),
                           "orientation": "h", "marker": {"color": PALETTE[0]},
                           "hovertemplate": "%{y}: %{x:,}<extra></extra>"}
    if customdata:
        bar["customdata"] = df[customdata].tolist()
    if hover:
        bar["hovertext"] = df[hover].tolist()
    return plain_fig([bar], {"yaxis": {"automargin": True}}, title, height=max(300, 26 * len(df) + 80))


def graph(chart_id: str, **style: Any) -> dcc.Graph:
    extra = {"style": style} if style else {}  # Dash 4's Graph breaks on style=None
    return dcc.Graph(id=chart_id, config={"displaylogo": False}, className="chart", **extra)


def card(*children: Any, width: str = "half") -> html.Div:
    return html.Div(list(children), className=f"card {width}")


def table(df: pd.DataFrame, table_id: str, max_rows: int = 200, formats: dict[str, str] | None = None) -> html.Table:
    """A plain HTML table (read-only by construction, unlike an editable DataTable)."""
    formats = formats or {}
    if df.empty:
        return html.Table([html.Tbody(html.Tr(html.Td("No rows")))], id=table_id, className="data-table")

    def cell(col: str, v: Any) -> str:
        return format_cell(v, formats.get(col))

    head = html.Thead(html.Tr([html.Th(str(c)) for c in df.columns]))
    body = html.Tbody([html.Tr([html.Td(cell(c, v)) for c, v in zip(df.columns, row, strict=True)])
                       for row in df.head(max_rows).itertuples(index=False)])
    return html.Table([head, body], id=table_id, className="data-table")
