"""Compare two listeners: the compatibility score and why, shared artists and tracks, what each might try. Opt-in:
only listeners who agreed (`tunelake consent grant`) are offered, and every request checks consent again, so a
revoked agreement holds at once (consent lives in the lake, not in the warehouse file the charts are cached on).

Under `tunelake serve` a listener is always listener A, and is offered nobody until they agreed themselves (the
switch on their account page); then only other listeners who agreed. Any other pair is refused (403) without
naming anyone."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

from tunelake.dashboard import FilterError, FilterState, Warehouse, parse_key
from tunelake.dashboard.pages.common import card, table

KEY, NAME, PATH = "compare", "Compare", "/compare"


def _me(viewer: Any) -> int | None:
    """The listener's own key under `tunelake serve`; None for everyone's view (an admin, the dashboard)."""
    return None if viewer is None or viewer.is_admin else int(viewer.user_key)


def layout(viewer: Any = None) -> html.Div:
    me = _me(viewer)

    def pick(cid: str, label: str, **fixed: Any) -> html.Div:
        return html.Div([html.Label(label, htmlFor=cid),
                         dcc.Dropdown(id=cid, placeholder="Pick a listener", className="dropdown", **fixed)],
                        className="filter wide")

    a = (pick("compare-a", "You", value=str(me), disabled=True, clearable=False) if me is not None
         else pick("compare-a", "Listener A"))
    return html.Div([
        html.H1("Compare listeners"),
        card(html.Div([a, pick("compare-b", "Listener B")],
                      style={"display": "flex", "gap": "16px", "flexWrap": "wrap"}),
             html.P(id="compare-note", className="hint"), width="full"),
        html.Div(id="compare-result", className="card full"),
    ], className="grid")


def consenting(wh: Warehouse) -> tuple[list[dict[str, Any]], int]:
    """Dropdown options for the listeners who agreed to be compared, and how many have not."""
    from tunelake.analytics.consent import has_consented

    users = wh.table("dim_user", "user_key, handle", order="handle")
    ok = [(int(k), str(h)) for k, h in users.itertuples(index=False) if has_consented(wh.ws.lake, str(h))]
    return [{"label": h, "value": str(k)} for k, h in ok], len(users) - len(ok)


def choices(wh: Warehouse, viewer: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """(options for A, options for B, the note under the pickers) as `viewer` may see them."""
    from tunelake.analytics.consent import has_consented
    from tunelake.analytics.insights import NotAllowed

    options, missing = consenting(wh)
    me = _me(viewer)
    if me is None:
        return options, options, (f"{len(options)} listeners agreed to be compared; {missing} have not "
                                  "(`tunelake consent grant --user NAME`).")
    mine = wh.table("dim_user", "user_key, handle", order="handle")
    mine = mine[mine["user_key"] == me]
    if mine.empty:
        raise NotAllowed("no data of this listener in the warehouse yet")
    own = [{"label": str(mine["handle"].iloc[0]), "value": str(me)}]
    if not has_consented(wh.ws.lake, str(mine["handle"].iloc[0])):
        return own, [], ("You have not agreed to be compared: turn it on under Compare on your account page; "
                         "then you are offered the listeners who agreed too.")
    others = [o for o in options if o["value"] != str(me)]
    return own, others, f"{len(others)} other listeners agreed to be compared."


def _key(wh: Warehouse, value: Any, field: str) -> int | None:
    key = parse_key(value, field)
    if key is not None and key not in wh.user_keys():
        raise FilterError(f"no listener with key {key}", field=field)
    return key


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def result(wh: Warehouse, a: Any, b: Any, viewer: Any = None) -> Any:
    """The comparison of the two picked listeners, or a short note saying what is missing. A listener's viewer
    gets NotAllowed for any pair but themselves and a listener they were offered."""
    import pandas as pd

    from tunelake.analytics.compare import compare_with_consent
    from tunelake.analytics.consent import ConsentError
    from tunelake.analytics.insights import NotAllowed
    from tunelake.errors import InputError

    me = _me(viewer)
    if me is not None:
        if parse_key(a, "compare-a") != me:
            raise NotAllowed("a listener compares only themselves")
        kb_asked = parse_key(b, "compare-b")
        if kb_asked is not None and str(kb_asked) not in {o["value"] for o in choices(wh, viewer)[1]}:
            raise NotAllowed("that listener is not offered to compare with")
    ka, kb = _key(wh, a, "compare-a"), _key(wh, b, "compare-b")
    if ka is None or kb is None:
        return html.P("Pick two listeners.", className="hint")
    if ka == kb:
        return html.P("Pick two different listeners.", className="hint")
    try:
        with wh.cursor() as con:
            r = compare_with_consent(wh.ws.lake, con, ka, kb)
    except ConsentError as exc:
        return html.P(f"Not compared: {str(exc).split(': ', 1)[-1]}.", className="bad", id="compare-refused")
    except InputError as exc:
        return html.P(str(exc).split(": ", 1)[-1], className="hint")
    ha, hb = r["a"]["handle"], r["b"]["handle"]
    shared = pd.DataFrame([{"artist": x["artist_name"], f"share of {ha}": _pct(x["share_a"]),
                            f"share of {hb}": _pct(x["share_b"]), "part of the score": _pct(x["part_of_score"])}
                           for x in r["shared_artists"]])
    tracks = pd.DataFrame([{"track": t["track_name"], "artist": t["artist_name"], f"streams {ha}": t["streams_a"],
                            f"streams {hb}": t["streams_b"]} for t in r["shared_tracks"]])

    def tries(key: str) -> pd.DataFrame:
        return pd.DataFrame([{"track": t["track_name"], "artist": t["artist_name"],
                              "": "new artist" if t["new_artist"] else ""} for t in r[key]["tracks"]])

    genre = "–" if r["genre_cosine"] is None else f"{r['genre_cosine']:.2f}"
    return html.Div([
        html.Div([html.Span(str(r["score"]), className="kpi-value", id="compare-score"),
                  html.Span(f" / 100 · {r['label']}")], className="kpi", **{"data-value": r["cosine"]}),
        html.P(r["explanation"], id="compare-explanation"),
        html.P(f"Genre match (cosine over genre shares): {genre}", className="hint"),
        html.H3("Shared artists"), table(shared, "compare-artists"),
        html.H3("Shared tracks"), table(tracks, "compare-tracks"),
        html.H3(f"{ha} might try (from {hb}'s favourites)"), table(tries("for_a"), "compare-for-a"),
        html.H3(f"{hb} might try (from {ha}'s favourites)"), table(tries("for_b"), "compare-for-b"),
    ])


def _register(app: Any, wh: Warehouse, viewer_of: Any = None) -> None:
    viewer_of = viewer_of or (lambda: None)

    @app.callback(Output("compare-a", "options"), Output("compare-b", "options"), Output("compare-note", "children"),
                  Input("filters", "data"))
    def fill_options(data: Any) -> Any:
        viewer = viewer_of()
        FilterState.from_store(data).checked(wh, viewer)  # the store is checked like on every page
        return choices(wh, viewer)

    @app.callback(Output("compare-result", "children"), Input("compare-a", "value"), Input("compare-b", "value"))
    def fill_result(a: Any, b: Any) -> Any:
        return result(wh, a, b, viewer_of())


CHARTS: list[Any] = []
CLICKS = [_register]
