"""Year in review: the listener of the filter bar (or the first one; under `tunelake serve` a listener's own), a
year picker, the shareable card (PNG and SVG to download) and its figures. The date filter does not apply: a
review is always one whole calendar year."""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from typing import Any

from dash import Input, Output, dcc, html

from tunelake.dashboard import FilterError, FilterState, Warehouse
from tunelake.dashboard.pages.common import card

KEY, NAME, PATH = "wrapped", "Year in review", "/wrapped"
_CARDS: OrderedDict[tuple[str, int, int], tuple[dict[str, Any], bytes | None, bytes | None]] = OrderedDict()
_CARDS_LOCK = threading.Lock()


def layout(viewer: Any = None) -> html.Div:
    hint = ("Your own year; the date filter does not apply: a review is a whole calendar year."
            if viewer is not None and not viewer.is_admin else
            "The listener comes from the filter bar (the first listener when none is picked); the date filter "
            "does not apply: a review is a whole calendar year.")
    return html.Div([
        html.H1("Year in review"),
        card(html.Div([html.Label("Year", htmlFor="wrapped-year"),
                       dcc.Dropdown(id="wrapped-year", clearable=False, placeholder="Latest year",
                                    className="dropdown")], className="filter", style={"maxWidth": "220px"}),
             html.P(hint, className="hint"), width="full"),
        html.Div(id="wrapped-card", className="card full"),
    ], className="grid")


def parse_year(value: Any) -> int | None:
    """A year from the picker: an integer 1900–2100, or None for "the latest"; FilterError otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1900 <= value <= 2100:
        raise FilterError(f"must be a year, got {str(value)[:40]!r}", field="year")
    return value


def _listener(wh: Warehouse, fs: FilterState) -> int | None:
    if fs.viewer is not None and not fs.viewer.is_admin:
        return int(fs.viewer.user_key)  # `checked` already refused any other listener
    if fs.user is not None:
        return int(fs.user)
    users = wh.table("dim_user", "user_key, handle", order="handle")
    return int(users["user_key"].iloc[0]) if len(users) else None


def review(wh: Warehouse, user_key: int, year: int) -> tuple[dict[str, Any], bytes | None, bytes | None]:
    """The review and its card (PNG, SVG; None without Matplotlib), cached per warehouse file: a file never
    changes once current."""
    from tunelake.analytics.wrapped import year_in_review
    from tunelake.errors import ConfigError
    from tunelake.report.card import render_card

    key = (wh.current_file(), user_key, year)
    with _CARDS_LOCK:
        if key in _CARDS:
            _CARDS.move_to_end(key)
            return _CARDS[key]
    with wh.cursor() as con:
        r = year_in_review(con, user_key, year)
    try:
        out: tuple[dict[str, Any], bytes | None, bytes | None] = (r, render_card(r, "png"), render_card(r, "svg"))
    except ConfigError:  # the dashboard extra does not need Matplotlib: the figures still show
        out = (r, None, None)
    with _CARDS_LOCK:
        _CARDS[key] = out
        while len(_CARDS) > 32:
            _CARDS.popitem(last=False)
    return out


def _facts(r: dict[str, Any]) -> html.Dl:
    from tunelake.report.card import card_lines

    t = card_lines(r)
    rows = [("Minutes", t["minutes"]), ("Listener type", t["personality"].split(": ", 1)[-1]),
            ("Top genres", t["genres"]), *t["facts"], *(("Never in Wrapped · " + k, v) for k, v in t["beyond"])]
    items: list[Any] = []
    for k, v in rows:
        items += [html.Dt(k), html.Dd(v)]
    return html.Dl(items, className="stats", id="wrapped-facts")


def fill(wh: Warehouse, data: Any, year_value: Any, viewer: Any = None) -> tuple[Any, list[dict[str, Any]], Any]:
    """(card children, year options, the year shown) for the filter store and the picked year, as `viewer`
    (None: everyone) may see them."""
    from tunelake.analytics.wrapped import years

    fs = FilterState.from_store(data).checked(wh, viewer)
    year = parse_year(year_value)
    user_key = _listener(wh, fs)
    if user_key is None:
        return html.P("No listeners yet: import some data first.", className="hint"), [], None
    with wh.cursor() as con:
        have = years(con, user_key)
    options = [{"label": str(y), "value": y} for y in reversed(have)]
    if not have:
        return html.P("This listener has no music plays.", className="hint"), options, None
    shown = year if year in have else have[-1]
    r, png, svg = review(wh, user_key, shown)
    name = f"wrapped-{r['handle']}-{shown}"
    if png is None or svg is None:
        image: list[Any] = [html.P("The card needs Matplotlib: pip install 'tunelake[report]'.", className="hint")]
        links: list[Any] = []
    else:
        b64 = base64.b64encode(svg).decode("ascii")
        link = {"display": "inline-flex", "alignItems": "center", "textDecoration": "none", "color": "inherit",
                "marginTop": "12px"}
        image = [html.Img(src=f"data:image/svg+xml;base64,{b64}", id="wrapped-image", alt=f"{r['handle']} {shown}",
                          style={"width": "420px", "maxWidth": "100%", "borderRadius": "12px"})]
        links = [html.A("Download PNG", id="wrapped-png", download=f"{name}.png", className="reset", style=link,
                        href="data:image/png;base64," + base64.b64encode(png).decode("ascii")),
                 " ",
                 html.A("Download SVG", id="wrapped-svg", download=f"{name}.svg", className="reset", style=link,
                        href=f"data:image/svg+xml;base64,{b64}")]
    children = [
        html.H3(f"{r['handle']} · {shown}", id="wrapped-title"),
        html.Div([*image, html.Div([_facts(r), *links], style={"flex": "1 1 320px"})],
                 style={"display": "flex", "gap": "24px", "flexWrap": "wrap", "alignItems": "flex-start"}),
    ]
    return children, options, shown


def _register(app: Any, wh: Warehouse, viewer_of: Any = None) -> None:
    @app.callback(Output("wrapped-card", "children"), Output("wrapped-year", "options"),
                  Output("wrapped-year", "value"), Input("filters", "data"), Input("wrapped-year", "value"))
    def fill_wrapped(data: Any, year: Any) -> Any:
        return fill(wh, data, year, viewer_of() if viewer_of else None)


CHARTS: list[Any] = []
CLICKS = [_register]
