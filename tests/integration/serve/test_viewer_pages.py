"""The pages a listener sees beyond the charts, under `tunelake serve`: their own Year in review, their own
recommendations (the evaluation stays with admins), and Compare — offered only when both listeners switched it on
on their account page, refused at once when either switches it off, and never naming a listener who did not agree.

Expected values come from plain DuckDB queries on the warehouse file and from the consent files in the lake."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from .conftest import csrf_of, dash_token, listeners, sign_in


def _sql(root: Path, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    con = duckdb.connect(str(current_warehouse_file(open_workspace(root))), read_only=True)
    try:
        return con.execute(query, params or []).fetchall()
    finally:
        con.close()


def _client(service: Any, name: str) -> Any:
    client = service.test_client()
    assert sign_in(client, name).status_code == 302
    return client


def _call(client: Any, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, Any]]) -> Any:
    """A Dash callback request as the renderer sends it (one output, or several in Dash's `..a...b..` form)."""
    outs = [{"id": i, "property": p} for i, p in outputs]
    out = f"{outputs[0][0]}.{outputs[0][1]}" if len(outputs) == 1 else \
        ".." + "...".join(f"{i}.{p}" for i, p in outputs) + ".."
    body = {"output": out, "outputs": outs[0] if len(outs) == 1 else outs,
            "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
            "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs], "state": []}
    return client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": dash_token(client)})


def _wrapped(client: Any, store: dict[str, Any], year: Any = None) -> Any:
    return _call(client, [("wrapped-card", "children"), ("wrapped-year", "options"), ("wrapped-year", "value")],
                 [("filters", "data", store), ("wrapped-year", "value", year)])


def _options(client: Any) -> Any:
    return _call(client, [("compare-a", "options"), ("compare-b", "options"), ("compare-note", "children")],
                 [("filters", "data", {})])


def _result(client: Any, a: Any, b: Any) -> Any:
    return _call(client, [("compare-result", "children")], [("compare-a", "value", str(a)),
                                                             ("compare-b", "value", str(b))])


def _consent(client: Any, on: bool) -> Any:
    return client.post("/consent", data={"compare": "on" if on else "off", "csrf_token": csrf_of(client, "/account")})


def _agreed(root: Path) -> set[str]:
    """Handles whose consent file in the lake says compare is granted (read as plain JSON)."""
    folder = root / "lake" / "_manifest" / "consent"
    return {p.stem for p in folder.glob("*.json")
            if json.loads(p.read_text())["purposes"].get("compare", {}).get("granted")} if folder.exists() else set()


def test_a_listeners_year_in_review_is_their_own(service: Any, serve_ws: Path) -> None:
    (ka, ha), (kb, hb) = listeners(serve_ws)[:2]
    a = _client(service, ha)
    resp = _wrapped(a, {})
    assert resp.status_code == 200, resp.data[:300]
    out = resp.get_json()["response"]
    years = [y for (y,) in _sql(serve_ws, "SELECT DISTINCT year(date) AS y FROM agg_user_day WHERE user_key = ? "
                                          "ORDER BY y DESC", [ka])]
    assert [o["value"] for o in out["wrapped-year"]["options"]] == years
    assert out["wrapped-year"]["value"] == years[0]
    text = json.dumps(out["wrapped-card"]["children"])
    assert f"{ha} \\u00b7 {years[0]}" in text or f"{ha} · {years[0]}" in text
    assert hb not in text
    for store in ({"user": str(kb)}, {"segment": 0}):  # another listener, or a segment: refused, nothing of B
        refused = _wrapped(a, store)
        assert refused.status_code == 403 and hb.encode() not in refused.data


def test_a_listener_sees_their_own_recommendations_and_not_the_evaluation(service: Any, serve_ws: Path) -> None:
    (ka, ha), (_, hb) = listeners(serve_ws)[:2]
    a = _client(service, ha)
    resp = _call(a, [("recs-list", "children")], [("filters", "data", {})])
    assert resp.status_code == 200
    text = json.dumps(resp.get_json()["response"])
    expected = _sql(serve_ws, "SELECT t.track_name FROM recommendations r LEFT JOIN dim_track t USING (track_id) "
                              "WHERE r.user_key = ? ORDER BY r.rank LIMIT 25", [ka])
    assert expected and all(json.dumps(name)[1:-1] in text for (name,) in expected)
    assert f"Recommended for {ha}" in text and hb not in text
    page = _call(a, [("page", "children")], [("url", "pathname", "/recommendations")]).get_data(as_text=True)
    assert '"recs-list"' in page and '"rec-metrics"' not in page and '"rec-evaluation"' not in page
    assert _call(a, [("rec-evaluation", "children")], [("filters", "data", {})]).status_code == 403
    admin = _client(service, "boss")
    page = _call(admin, [("page", "children")], [("url", "pathname", "/recommendations")]).get_data(as_text=True)
    assert '"rec-metrics"' in page and '"rec-evaluation"' in page


def test_compare_needs_both_listeners_to_agree_and_stops_at_once(service: Any, serve_ws: Path) -> None:
    from tunelake.analytics.compare import compare
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    (ka, ha), (kb, hb), (kc, hc) = listeners(serve_ws)[:3]
    a, b = _client(service, ha), _client(service, hb)
    assert _agreed(serve_ws) == set()

    # nobody agreed: A is offered nobody, and a crafted request for B is refused without B's name
    opts = _options(a).get_json()["response"]
    assert opts["compare-a"]["options"] == [{"label": ha, "value": str(ka)}]
    assert opts["compare-b"]["options"] == [] and "account page" in opts["compare-note"]["children"]
    refused = _result(a, ka, kb)
    assert refused.status_code == 403 and hb.encode() not in refused.data

    # A agrees (the account page's switch): still nobody to compare with until B agrees too
    assert _consent(a, True).status_code == 302 and _agreed(serve_ws) == {ha}
    assert "You agreed to be compared" in a.get("/account").get_data(as_text=True)
    assert _options(a).get_json()["response"]["compare-b"]["options"] == []
    assert _result(a, ka, kb).status_code == 403

    assert _consent(b, True).status_code == 302 and _agreed(serve_ws) == {ha, hb}
    opts = _options(a).get_json()["response"]
    assert opts["compare-b"]["options"] == [{"label": hb, "value": str(kb)}]
    resp = _result(a, ka, kb)
    assert resp.status_code == 200
    con = duckdb.connect(str(current_warehouse_file(open_workspace(serve_ws))), read_only=True)
    try:
        expected = compare(con, ka, kb)
    finally:
        con.close()
    text = resp.get_data(as_text=True)
    assert f'"children": "{expected["score"]}"' in text.replace('":"', '": "') and hc not in text

    # A is always listener A; C never agreed: both refused, C not named
    assert _result(a, kb, ka).status_code == 403
    other = _result(a, ka, kc)
    assert other.status_code == 403 and hc.encode() not in other.data

    # B stops: refused at once, without a rebuild
    assert _consent(b, False).status_code == 302 and _agreed(serve_ws) == {ha}
    assert _result(a, ka, kb).status_code == 403
    assert _options(a).get_json()["response"]["compare-b"]["options"] == []


def test_the_consent_switch_is_a_listeners_own(service: Any, serve_ws: Path) -> None:
    ha = listeners(serve_ws)[0][1]
    before = _agreed(serve_ws)
    admin = _client(service, "boss")
    assert admin.post("/consent", data={"compare": "on", "csrf_token": csrf_of(admin, "/account")}).status_code == 403
    a = _client(service, ha)
    assert a.post("/consent", data={"compare": "on"}).status_code == 400  # no CSRF token
    assert a.post("/consent", data={"compare": "yes", "csrf_token": csrf_of(a, "/account")}).status_code == 400
    assert _agreed(serve_ws) == before


@pytest.mark.parametrize("page", ["wrapped", "compare", "recommendations"])
def test_listener_pages_are_in_a_listeners_navigation(service: Any, serve_ws: Path, page: str) -> None:
    a = _client(service, listeners(serve_ws)[0][1])
    layout = a.get("/_dash-layout").get_data(as_text=True)
    assert f'"id":"nav-{page}"' in layout and '"id":"nav-segments"' not in layout



def _find(node: Any, cid: str) -> Any:
    """The component with id `cid` in a serialised Dash tree."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
        elif isinstance(n, dict):
            if n.get("props", {}).get("id") == cid:
                return n
            stack.append(n.get("props", {}).get("children"))
    raise AssertionError(f"no component {cid}")


def _token(root: Path, handle: str, issued: float) -> None:
    """A token file as `tunelake auth login` leaves it (0600), its refresh token issued at `issued`."""
    import os
    import time

    from tunelake.sources.spotify.auth import REFRESH_ISSUED

    path = root / "secrets" / "tokens" / f"{handle}.json"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"access_token": "a", "refresh_token": "r", "token_type": "Bearer", "scope": "",
                   "expires_at": int(time.time()) + 3600, REFRESH_ISSUED: issued}, fh)


def test_token_trouble_is_shown_to_the_listener_and_the_admin(service: Any, serve_ws: Path) -> None:
    """14 days before a refresh token's 6-month expiry the listener's account page says when it ends and offers to
    connect again; a refused token says so too; the admin's data-quality page lists both, read at request time."""
    import time
    from datetime import UTC, datetime

    from tunelake.curate.listener_state import ListenerState, write_state
    from tunelake.workspace import open_workspace

    (_, ha), (_, hb) = listeners(serve_ws)[:2]
    issued = time.time() - 175 * 86400
    _token(serve_ws, ha, issued)
    _token(serve_ws, hb, time.time() - 86400)
    ws = open_workspace(serve_ws)
    with ws.writing(command="test: a refused refresh token"), ws.lake.transaction("test"):
        write_state(ws.lake, ListenerState(hb, needs_login=True, needs_login_since="2026-12-01T00:00:00Z"))
    try:
        a, b = _client(service, ha), _client(service, hb)
        ends = datetime.fromtimestamp(issued + 182 * 86400, UTC).strftime("%Y-%m-%d")
        page_a = a.get("/account").get_data(as_text=True)
        assert 'id="spotify-token"' in page_a and f"ends on {ends}" in page_a and 'id="reconnect"' in page_a
        page_b = b.get("/account").get_data(as_text=True)
        assert 'id="spotify-token"' in page_b and "no longer accepts" in page_b

        admin = _client(service, "boss")
        resp = _call(admin, [("collector-state", "children")], [("filters", "data", {})])
        assert resp.status_code == 200
        body = _find(resp.get_json()["response"]["collector-state"]["children"], "collector-table")
        trs = body["props"]["children"][1]["props"]["children"]  # Thead, Tbody
        rows = {}
        for tr in trs:
            cells = [td["props"]["children"] for td in tr["props"]["children"]]
            rows[cells[0]] = cells
        assert rows[ha][4] == "expiring" and ends in rows[ha][5]
        assert rows[hb][4] == "needs_login" and f"auth login --user {hb}" in rows[hb][5]
        assert _call(a, [("collector-state", "children")], [("filters", "data", {})]).status_code == 403
    finally:
        for h in (ha, hb):
            (serve_ws / "secrets" / "tokens" / f"{h}.json").unlink()


def test_the_warm_up_pass_fills_every_accounts_charts_once_and_follows_a_new_build(serve_ws: Path) -> None:
    """`create_service(warm=True)`: after its pass every account's unfiltered charts are answered from the cache
    (no chart computed again); a chart asked for by several requests at once is computed once; and a new current
    warehouse file starts a new pass. Runs last: it makes a new warehouse file (same rows) for the module."""
    import threading

    from tunelake.analytics.insights import listener_viewer
    from tunelake.pipeline.runner import build
    from tunelake.serve import accounts
    from tunelake.serve.app import close_service, create_service
    from tunelake.workspace import open_workspace

    ws = open_workspace(serve_ws)
    app = create_service(ws, warm=True)
    try:
        assert app.warmer.warmed.wait(300)
        fills = app.dash._tunelake_fills
        viewers = [listener_viewer(a.user_key, a.name) for a in accounts.list_accounts(ws) if not a.is_admin]
        assert len(viewers) == 2

        def totals() -> tuple[int, int]:
            return sum(f.stats["misses"] for f in fills), sum(f.stats["hits"] for f in fills)

        misses, hits = totals()
        mine = [f for f in fills if not f.admin_only]
        for v in viewers:
            for f in mine:
                f({}, v)
        assert totals() == (misses, hits + len(viewers) * len(mine))

        fill, store = mine[0], {"start": "2026-01-01", "end": "2026-01-31"}  # a view nobody asked for yet
        m0, h0 = fill.stats["misses"], fill.stats["hits"]
        threads = [threading.Thread(target=fill, args=(store, viewers[0])) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (fill.stats["misses"], fill.stats["hits"]) == (m0 + 1, h0 + 3)
        before = app.warmer.passes
        build(ws, force=True)
        for _ in range(300):
            if app.warmer.passes > before and app.warmer.warmed.is_set():
                break
            threading.Event().wait(0.2)
        assert app.warmer.passes == before + 1
    finally:
        close_service(app)
