"""Compare two listeners: the compatibility score and why, shared artists and tracks, what each might try. Opt-in:
only listeners who agreed (`tunelake consent grant`) are offered, and every request checks consent again, so a
revoked agreement holds at once (consent lives in the lake, not in the warehouse file the charts are cached on)."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

from tunelake.dashboard import FilterError, FilterState, Warehouse, parse_key
from tunelake.dashboard.pages.common import card, table

KEY, NAME, PATH = "compare", "Compare", "/compare"
# its callbacks pick a listener themselves (not through a viewer): `tunelake serve` shows it to admins only
ADMIN_ONLY = True


def layout() -> html.Div:
    def pick(cid: str, label: str) -> html.Div:
        return html.Div([html.Label(label, htmlFor=cid),
                         dcc.Dropdown(id=cid, placeholder="Pick a listener", className="dropdown")],
                        className="filter wide")

    return html.Div([
        html.H1("Compare listeners"),
        card(html.Div([pick("compare-a", "Listener A"), pick("compare-b", "Listener B")],
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


def _key(wh: Warehouse, value: Any, field: str) -> int | None:
    key = parse_key(value, field)
    if key is not None and key not in wh.user_keys():
        raise FilterError(f"no listener with key {key}", field=field)
    return key


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.0%}"


def result(wh: Warehouse, a: Any, b: Any) -> Any:
    """The comparison of the two picked listeners, or a short note saying what is missing."""
    import pandas as pd

    from tunelake.analytics.compare import compare_with_consent
    from tunelake.analytics.consent import ConsentError
    from tunelake.errors import InputError

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


def _register(app: Any, wh: Warehouse) -> None:
    @app.callback(Output("compare-a", "options"), Output("compare-b", "options"), Output("compare-note", "children"),
                  Input("filters", "data"))
    def fill_options(data: Any) -> Any:
        FilterState.from_store(data).checked(wh)  # the store is checked like on every page
        options, missing = consenting(wh)
        note = (f"{len(options)} listeners agreed to be compared; {missing} have not "
                "(`tunelake consent grant --user NAME`).")
        return options, options, note

    @app.callback(Output("compare-result", "children"), Input("compare-a", "value"), Input("compare-b", "value"))
    def fill_result(a: Any, b: Any) -> Any:
        return result(wh, a, b)


CHARTS: list[Any] = []
CLICKS = [_register]
