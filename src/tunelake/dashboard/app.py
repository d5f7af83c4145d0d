"""The Dash app: a filter bar shared by every page, one callback per chart, and `serve` for the CLI and the demo.

Every chart callback takes the filter store as its only input, so the same function can be timed directly by the
benchmark and served over HTTP. Click handlers only rewrite the filter controls; the charts follow from there.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, dcc, html

from tunelake.analytics.insights import NotAllowed
from tunelake.dashboard import DEFAULT_HOST, DEFAULT_PORT, FilterError, FilterState, Warehouse
from tunelake.dashboard.hosts import allowed_hosts, install_host_check
from tunelake.dashboard.pages import PAGES, Page, visible_pages
from tunelake.workspace import Workspace

ASSETS = Path(__file__).parent / "assets"


def _listener_options(wh: Warehouse, viewer: Any = None) -> list[dict[str, Any]]:
    users = wh.table("dim_user", "user_key, handle", order="handle")
    if viewer is not None and not viewer.is_admin:
        users = users[users["user_key"] == viewer.user_key] if not users.empty else users
    # user keys are 64-bit hashes: as JSON numbers JavaScript would round them, so they travel as strings
    return [{"label": str(h), "value": str(int(k))} for k, h in users.itertuples(index=False)]


def _segment_options(wh: Warehouse, viewer: Any = None) -> list[dict[str, Any]]:
    from tunelake.dashboard.pages.segments import segment_names

    if viewer is not None and not viewer.is_admin:
        return []

    return [{"label": f"{seg} · {name}", "value": seg} for seg, name in segment_names(wh).items()]


def _date_bounds(wh: Warehouse, viewer: Any = None) -> tuple[str | None, str | None]:
    """The date pickers' range: the warehouse's calendar, or a listener's own listening days."""
    if viewer is not None and not viewer.is_admin:
        if not wh.has("agg_user_day"):
            return None, None
        with wh.cursor() as cur:
            lo, hi = cur.execute("SELECT min(date), max(date) FROM agg_user_day WHERE user_key = ?",
                                 [viewer.user_key]).fetchone()
        return (lo.isoformat() if lo else None, hi.isoformat() if hi else None)
    if not wh.has("dim_date"):
        return None, None
    with wh.cursor() as cur:
        lo, hi = cur.execute("SELECT min(date), max(date) FROM dim_date").fetchone()
    return (lo.isoformat() if lo else None, hi.isoformat() if hi else None)


def _filter_bar(wh: Warehouse, viewer: Any = None) -> html.Div:
    lo, hi = _date_bounds(wh, viewer)
    return html.Div([
        html.Div([html.Label("From", htmlFor="f-start"),
                  dcc.Input(id="f-start", type="date", min=lo, max=hi, className="date-input")],
                 className="filter"),
        html.Div([html.Label("To", htmlFor="f-end"),
                  dcc.Input(id="f-end", type="date", min=lo, max=hi, className="date-input")],
                 className="filter"),
        html.Div([html.Label("Listener"),
                  dcc.Dropdown(id="f-user", options=_listener_options(wh, viewer), placeholder="All listeners",
                               clearable=True, className="dropdown")], className="filter wide"),
        html.Div([html.Label("Segment"),
                  dcc.Dropdown(id="f-segment", options=_segment_options(wh, viewer), placeholder="All segments",
                               clearable=True, className="dropdown")], className="filter wide"),
        html.Button("Reset filters", id="f-reset", n_clicks=0, className="reset"),
        html.Div(id="f-summary", className="filter-summary"),
    ], className="filter-bar", **{"data-min": lo or "", "data-max": hi or ""})


def _nav(viewer: Any = None) -> html.Nav:
    return html.Nav([dcc.Link(p.name, href=p.path, id=f"nav-{p.key}", className="nav-link")
                     for p in visible_pages(viewer)], className="nav")


def create_app(ws: Workspace, cache_size: int = 512, warm: bool = False, host: str | None = None, *,
               server: Any = None, viewer_of: Callable[[], Any] | None = None,
               header_links: Callable[[], list[Any]] | None = None, post_paths: tuple[str, ...] = ()) -> dash.Dash:
    """A Dash app over the workspace's current warehouse (read-only; every asset served from the packages).

    Chart outputs are cached per (warehouse file, chart, filters): a warehouse file never changes once current,
    so a cached chart is exactly what recomputing it would give, and a new build starts a new cache key.
    `cache_size=0` turns the cache off (the benchmark measures uncached callbacks). `warm=True` computes the
    unfiltered view of every chart in a background thread at start, so the first visitor of a large warehouse
    does not wait for the slowest metrics (`serve` does this). `host` is the address the server binds to
    (default: the dashboard_host setting); it is one of the `Host` names answered, see `dashboard.hosts`.

    For `tunelake serve`: `server` is the Flask app to mount on, `viewer_of()` gives the signed-in viewer of the
    request (an `insights.Viewer`; None = everyone), applied to every layout and callback from the session, never
    from the request; `header_links()` adds the account links; `post_paths` are the service's form routes."""
    allowed = allowed_hosts(ws, host)  # a bad setting fails here, before anything is served
    wh = Warehouse(ws)
    wh.has("dim_user")  # fail now, with the CLI's one-line hint, when there is no warehouse yet
    viewer_of = viewer_of or (lambda: None)
    app = dash.Dash(
        __name__, server=server if server is not None else True, serve_locally=True, assets_folder=str(ASSETS),
        title="tunelake", update_title=None,
        suppress_callback_exceptions=True, external_scripts=[], external_stylesheets=[],
    )
    app._tunelake_warehouse = wh  # the benchmark and tests reach the same connection cache
    install_host_check(app.server, allowed)
    app.server.register_error_handler(FilterError, _refuse_filter)
    app.server.register_error_handler(NotAllowed, _refuse_viewer)

    def serve_layout() -> html.Div:
        viewer = viewer_of()
        links = header_links() if header_links else []
        return html.Div([
            dcc.Location(id="url"),
            html.Header([html.Div([html.Span("tunelake", className="brand"),
                                   html.Span("listening analytics", className="tagline")]), _nav(viewer),
                         *([html.Div(links, className="account-links")] if links else [])],
                        className="header"),
            _filter_bar(wh, viewer),
            dcc.Store(id="filters", data={}),
            html.Main(id="page", className="page"),
            html.Footer(f"Read-only view of {ws.root}", className="footer"),
        ], className="app")

    app.layout = serve_layout
    pages = {p.path: p for p in PAGES}

    @app.callback(Output("page", "children"), Input("url", "pathname"))
    def route(pathname: str | None) -> Any:
        # an unknown path shows the overview, whatever its type (a crafted one must not become a 500)
        page = pages.get(pathname if isinstance(pathname, str) else "/") or pages["/"]
        viewer = viewer_of()
        if page.admin_only and page not in visible_pages(viewer):
            page = pages["/"]
        return page.layout(viewer)

    @app.callback(Output("filters", "data"), Output("f-summary", "children"),
                  Input("f-start", "value"), Input("f-end", "value"), Input("f-user", "value"),
                  Input("f-segment", "value"))
    def update_filters(start: Any, end: Any, user: Any, segment: Any) -> Any:
        fs = FilterState.parse(start, end, user, segment).checked(wh, viewer_of())
        parts = []
        if fs.start or fs.end:
            parts.append(f"{fs.start or '…'} → {fs.end or '…'}")
        if fs.user is not None:
            parts.append("1 listener")
        if fs.segment is not None:
            parts.append(f"segment {fs.segment}")
        return fs.store(), ("Filtered: " + " · ".join(parts)) if parts else "All data"

    @app.callback(Output("f-start", "value"), Output("f-end", "value"), Output("f-user", "value"),
                  Output("f-segment", "value"), Input("f-reset", "n_clicks"), prevent_initial_call=True)
    def reset(_: int) -> Any:
        return None, None, None, None

    fills = []
    for page in PAGES:
        for chart in page.charts:
            fills.append(_register_chart(app, wh, chart, cache_size, viewer_of, page.admin_only or chart.admin_only))
        for click in page.clicks:
            click(app, wh, viewer_of)

    @app.server.before_request
    def _read_only() -> Any:
        from flask import abort, request

        if request.method not in ("GET", "HEAD", "POST", "OPTIONS"):
            abort(405)
        if request.method == "POST" and not (request.path.endswith("_dash-update-component")
                                             or request.path.startswith(post_paths)):
            abort(405)
        return None

    admin_ids = admin_component_ids()

    @app.server.before_request
    def _admin_components() -> Any:
        """A page may register callbacks of its own (CLICKS); a listener's viewer reaches none that reads or
        writes a component of an admin-only page, whatever the callback does."""
        from flask import request

        if not request.path.endswith("_dash-update-component"):
            return None
        viewer = viewer_of()
        if viewer is None or viewer.is_admin:
            return None
        if _request_ids(request.get_json(silent=True)) & admin_ids:
            raise NotAllowed("this page is shown to admins only")
        return None

    app._tunelake_fills = fills
    if warm and cache_size > 0:
        warm_charts(app)
    return app


def warm_charts(app: dash.Dash, viewer: Any = None) -> None:
    """Compute the unfiltered view of every chart `viewer` may see (None: everyone's) in a background thread, so
    the first request finds it cached: at start for everyone, at sign-in for a listener (`tunelake serve`), while
    the browser is still loading the page's scripts."""
    thread = threading.Thread(target=warm_now, args=(app, viewer), name="tunelake-dashboard-warm", daemon=True)
    app._tunelake_warming = [t for t in getattr(app, "_tunelake_warming", []) if t.is_alive()] + [thread]
    thread.start()


def warm_now(app: dash.Dash, viewer: Any = None) -> None:
    """Compute (into the chart cache) the unfiltered view of every chart `viewer` may see, in this thread."""
    for fill in app._tunelake_fills:
        if viewer is not None and not viewer.is_admin and fill.admin_only:
            continue
        try:
            fill({}, viewer)
        except Exception:  # a chart that fails now fails again, visibly, when a browser asks for it
            logging.getLogger(__name__).debug("warm-up of a chart failed", exc_info=True)


def close_app(app: dash.Dash, timeout_s: float = 120.0) -> None:
    """Let running warm-ups finish, then close the warehouse connection (closing it under a busy cursor fails)."""
    for thread in getattr(app, "_tunelake_warming", []):
        thread.join(timeout_s)
    app._tunelake_warehouse.close()


def admin_component_ids() -> frozenset[str]:
    """The components a listener's viewer may not touch: every id of an admin-only page, and the admin-only
    charts of the pages listeners see too."""
    return _component_ids([p.layout(None) for p in PAGES if p.admin_only]) | {
        c.id for p in PAGES for c in p.charts if c.admin_only}


def _component_ids(trees: list[Any]) -> frozenset[str]:
    """Every string id in these layouts (Dash components nest through `children`)."""
    found: set[str] = set()
    stack = list(trees)
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        cid = getattr(node, "id", None)
        if isinstance(cid, str):
            found.add(cid)
        children = getattr(node, "children", None)
        if children is not None and not isinstance(children, str | int | float):
            stack.append(children)
    return frozenset(found)


def _request_ids(body: Any) -> set[str]:
    """The component ids a Dash callback request names (outputs, inputs, state); an unreadable body names none
    (Dash itself refuses it)."""
    if not isinstance(body, dict):
        return set()
    items: list[Any] = []
    for key in ("outputs", "inputs", "state"):
        value = body.get(key)
        items.extend(value if isinstance(value, list) else [value])
    ids = {i.get("id") for i in items if isinstance(i, dict)}
    out = body.get("output")
    if isinstance(out, str):  # "a.prop" or "..a.prop...b.prop.."
        ids |= {part.split(".", 1)[0] for part in out.strip(".").split("...")}
    return {i for i in ids if isinstance(i, str)}


def _refuse_filter(exc: FilterError) -> Any:
    """A crafted filter is the caller's error: a one-line 400 and one log line, no traceback (Flask would log
    an unhandled exception with its stack and answer an HTML 500)."""
    from flask import Response, request

    logging.getLogger(__name__).warning("dashboard: refused %s: %s", request.path, exc)
    resp = Response(f"400 Bad Request: {exc}\n", status=400, mimetype="text/plain")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _refuse_viewer(exc: NotAllowed) -> Any:
    """Another listener's data, or an admin page, asked for by a listener: 403, one log line."""
    from flask import Response, request

    logging.getLogger(__name__).warning("dashboard: refused %s: %s", request.path, exc)
    resp = Response(f"403 Forbidden: {exc}\n", status=403, mimetype="text/plain")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _register_chart(app: dash.Dash, wh: Warehouse, chart: Any, cache_size: int,
                    viewer_of: Callable[[], Any] = lambda: None, admin_only: bool = False) -> Any:
    import json
    from collections import OrderedDict

    cache: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
    computing: dict[tuple[str, str, str], threading.Event] = {}  # one computation per key at a time
    lock = threading.Lock()
    stats = {"hits": 0, "misses": 0}  # misses = computations; a wait for one under way is a hit

    def fill(data: dict[str, Any] | None, viewer: Any = None) -> Any:
        viewer = viewer if viewer is not None else viewer_of()
        if admin_only and viewer is not None and not viewer.is_admin:
            raise NotAllowed(f"{chart.id} is shown to admins only")
        fs = FilterState.from_store(data).checked(wh, viewer)
        if cache_size <= 0:
            return chart.fn(wh, fs)
        who = "*" if viewer is None or viewer.is_admin else str(viewer.user_key)
        key = (wh.current_file(), who, json.dumps(fs.store(), sort_keys=True))
        while True:
            with lock:
                if key in cache:
                    cache.move_to_end(key)
                    stats["hits"] += 1
                    return cache[key]
                running = computing.get(key)
                if running is None:
                    computing[key] = done = threading.Event()
                    stats["misses"] += 1
                    break
            # the same chart is being computed (a sign-in warm-up, another tab): wait for it, do not redo it
            running.wait(120)
        try:
            out = chart.fn(wh, fs)
            with lock:
                cache[key] = out
                while len(cache) > cache_size:
                    cache.popitem(last=False)
            return out
        finally:
            with lock:
                computing.pop(key, None)
            done.set()  # a failed computation leaves no entry: a waiter computes (and fails) itself

    fill.__name__ = f"fill_{chart.id.replace('-', '_')}"
    fill.admin_only = admin_only  # type: ignore[attr-defined]
    fill.stats = stats  # type: ignore[attr-defined]

    def callback(data: dict[str, Any] | None) -> Any:  # Dash passes only the store; the viewer is the session's
        return fill(data)

    callback.__name__ = fill.__name__
    app.callback(Output(chart.id, chart.prop), Input("filters", "data"))(callback)
    return fill


def chart_functions() -> list[tuple[str, Page, Any]]:
    """Every chart callback's function (page, id, fn), for the benchmark."""
    return [(c.id, p, c.fn) for p in PAGES for c in p.charts]


def serve(ws: Workspace, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, say: Any = None,
          debug: bool = False) -> None:
    """Serve the dashboard until interrupted. Anything but loopback exposes listening data to the network, so it
    gets a warning (there is no login); whatever the address, only the allowed `Host` names are answered."""
    say = say or (lambda s: print(s, file=sys.stderr))
    if host != DEFAULT_HOST:
        say(f"WARNING: binding the dashboard to {host} exposes every listener's data to the network without "
            "authentication; use 127.0.0.1 unless you trust that network. Requests are answered only for the "
            f"Host names {host}, 127.0.0.1, localhost and [::1]; add others with the dashboard_allowed_hosts "
            "setting.")
    app = create_app(ws, warm=True, host=host)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    say(f"Dashboard on http://{host}:{port}/ (Ctrl+C to stop)")
    app.run(host=host, port=port, debug=debug, use_reloader=False, dev_tools_ui=False, dev_tools_props_check=False)


__all__ = ["admin_component_ids", "chart_functions", "close_app", "create_app", "serve", "warm_charts", "warm_now"]
