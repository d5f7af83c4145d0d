"""The service's security suite: every chart callback and route asked for another listener's data, without a
session, with a missing or forged CSRF token, with path traversal in a download name, with an expired or spent
invite — each refused, never the other listener's data — and login brute force slowed by the limiter.

Expected numbers come from plain DuckDB queries on the warehouse file, not from the metric layer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from .conftest import PASSWORD, chart_body, csrf_of, dash_token, listeners, sign_in


def _charts() -> list[tuple[str, str, bool]]:
    from tunelake.dashboard.pages import PAGES

    return [(c.id, c.prop, p.admin_only or c.admin_only) for p in PAGES for c in p.charts]


@pytest.fixture()
def as_a(service: Any, serve_ws: Path) -> Any:
    client = service.test_client()
    a = listeners(serve_ws)[0]
    assert sign_in(client, a[1]).status_code == 302
    return client


def _post_chart(client: Any, chart_id: str, prop: str, store: dict[str, Any], token: str | None = "cookie") -> Any:
    headers = {} if token is None else {"X-CSRFToken": dash_token(client) if token == "cookie" else token}
    return client.post("/_dash-update-component", json=chart_body(chart_id, prop, store), headers=headers)


def _sql(root: Path, query: str) -> list[tuple[Any, ...]]:
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    con = duckdb.connect(str(current_warehouse_file(open_workspace(root))), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def test_without_a_session_nothing_is_answered(service: Any) -> None:
    client = service.test_client()
    assert client.get("/").status_code == 302 and client.get("/").headers["Location"].endswith("/login")
    for cid, prop, _ in _charts():
        resp = client.post("/_dash-update-component", json=chart_body(cid, prop, {}))
        assert resp.status_code in (400, 401), cid  # CSRF (400) or the session gate (401): never a figure
        assert b'"response"' not in resp.data
    for path in ("/_dash-layout", "/_dash-dependencies", "/account", "/mydata/files/my-tunelake-data.zip",
                 "/upload/0123456789abcdef", "/connect/callback?state=x&code=y"):
        resp = client.get(path)
        assert resp.status_code in (302, 401), path
        assert b"fact_play" not in resp.data and b"handle" not in resp.data


def test_listener_charts_hold_only_their_own_numbers(as_a: Any, serve_ws: Path) -> None:
    (ka, ha), (_, hb) = listeners(serve_ws)[:2]
    resp = _post_chart(as_a, "kpis", "children", {})
    assert resp.status_code == 200
    cards = {c["props"]["id"]: c["props"].get("data-value") for c in resp.get_json()["response"]["kpis"]["children"]}
    plays_a = _sql(serve_ws, f"SELECT count(*) FROM fact_play WHERE user_key = {ka}")[0][0]
    plays_all = _sql(serve_ws, "SELECT count(*) FROM fact_play")[0][0]
    assert int(cards["kpi-plays"]) == plays_a < plays_all
    assert int(cards["kpi-listeners"]) == 1
    layout = as_a.get("/_dash-layout").get_data(as_text=True)
    assert ha in layout and hb not in layout  # the listener picker offers only themselves
    assert "nav-segments" not in layout and "nav-quality" not in layout
    lo, hi = _sql(serve_ws, f"SELECT min(date), max(date) FROM agg_user_day WHERE user_key = {ka}")[0]
    assert f'"data-min":"{lo.isoformat()}"' in layout and f'"data-max":"{hi.isoformat()}"' in layout


@pytest.mark.parametrize("store", [{"user": "B"}, {"segment": 0}], ids=["other-listener", "segment"])
def test_every_chart_refuses_another_listener_or_a_segment(as_a: Any, serve_ws: Path, store: dict[str, Any]) -> None:
    kb, hb = listeners(serve_ws)[1]
    store = {"user": str(kb)} if "user" in store else store
    for cid, prop, _ in _charts():
        resp = _post_chart(as_a, cid, prop, store)
        assert resp.status_code == 403, (cid, resp.status_code, resp.data[:200])
        assert hb.encode() not in resp.data


def test_admin_pages_are_refused_to_a_listener(as_a: Any) -> None:
    for cid, prop, admin_only in _charts():
        if admin_only:
            assert _post_chart(as_a, cid, prop, {}).status_code == 403, cid


def test_listener_filter_controls_cannot_name_another_listener(as_a: Any, serve_ws: Path) -> None:
    kb = listeners(serve_ws)[1][0]
    body = {"output": "..filters.data...f-summary.children..",
            "outputs": [{"id": "filters", "property": "data"}, {"id": "f-summary", "property": "children"}],
            "inputs": [{"id": i, "property": "value", "value": v} for i, v in
                       (("f-start", None), ("f-end", None), ("f-user", str(kb)), ("f-segment", None))],
            "changedPropIds": ["f-user.value"], "state": []}
    resp = as_a.post("/_dash-update-component", json=body, headers={"X-CSRFToken": dash_token(as_a)})
    assert resp.status_code == 403


def test_admin_sees_everyone(service: Any, serve_ws: Path) -> None:
    client = service.test_client()
    assert sign_in(client, "boss").status_code == 302
    resp = _post_chart(client, "kpis", "children", {})
    cards = {c["props"]["id"]: c["props"].get("data-value") for c in resp.get_json()["response"]["kpis"]["children"]}
    assert int(cards["kpi-listeners"]) == len(listeners(serve_ws))
    for cid, prop, admin_only in _charts():
        if admin_only:
            assert _post_chart(client, cid, prop, {}).status_code == 200, cid


def test_missing_or_forged_csrf_is_refused(as_a: Any, serve_ws: Path) -> None:
    assert _post_chart(as_a, "kpis", "children", {}, token=None).status_code == 400
    assert _post_chart(as_a, "kpis", "children", {}, token="forged.token.value").status_code == 400
    other = as_a.application.test_client()  # a token from another session is no good here either
    sign_in(other, listeners(serve_ws)[1][1])
    assert _post_chart(as_a, "kpis", "children", {}, token=dash_token(other)).status_code == 400
    ha = listeners(serve_ws)[0][1]
    for path, data in (("/mydata/delete", {"confirm": ha}), ("/disconnect", {}), ("/connect", {}),
                       ("/consent", {"compare": "on"}),
                       ("/logout", {}), ("/account/invite", {"name": "mallory"})):
        assert as_a.post(path, data=data).status_code == 400, path
        assert as_a.post(path, data={**data, "csrf_token": "forged"}).status_code == 400, path
    assert as_a.post("/upload", data=b"{}", headers={"X-Filename": "x.json"}).status_code == 400
    assert _post_chart(as_a, "kpis", "children", {}).status_code == 200  # still signed in, data still there


@pytest.mark.parametrize("name", ["../../secrets/accounts.json", "..%2F..%2Fsecrets%2Faccounts.json",
                                  "my-tunelake-data.zip/../../../secrets/accounts.json", "/etc/passwd",
                                  "my-tunelake-data.zip%00.json", "MY-TUNELAKE-DATA.ZIP"])
def test_path_traversal_in_download_names_is_refused(as_a: Any, name: str) -> None:
    resp = as_a.get(f"/mydata/files/{name}")
    if name.startswith("/"):  # '//etc/passwd' is not the download route at all: Dash's page shell answers it
        assert resp.status_code == 200 and resp.mimetype == "text/html"
    else:
        assert resp.status_code == 404
    assert resp.mimetype != "application/zip"
    assert b"argon2" not in resp.data and b"root:" not in resp.data


def test_download_holds_only_the_listeners_rows(as_a: Any, serve_ws: Path, tmp_path: Path) -> None:
    import io
    import zipfile

    (ka, _), (kb, _) = listeners(serve_ws)[:2]
    resp = as_a.get("/mydata/files/my-tunelake-data.zip")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(resp.data))
    zf.extractall(tmp_path)
    fact = tmp_path / "parquet" / "fact_play.parquet"
    keys = duckdb.sql(f"SELECT DISTINCT user_key FROM '{fact}'").fetchall()
    assert keys == [(ka,)]
    n = duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'csv' / 'fact_play.csv'}'").fetchall()[0][0]
    assert n == _sql(serve_ws, f"SELECT count(*) FROM fact_play WHERE user_key = {ka}")[0][0]
    assert kb not in {k for name in zf.namelist() if name.endswith(".parquet")
                      for (k,) in duckdb.sql(f"SELECT DISTINCT user_key FROM '{tmp_path / name}'").fetchall()}


def test_admin_routes_refuse_listeners_and_listener_routes_refuse_admins(as_a: Any, service: Any) -> None:
    token = csrf_of(as_a, "/account")
    assert as_a.post("/account/invite", data={"name": "mallory", "csrf_token": token}).status_code == 403
    admin = service.test_client()
    sign_in(admin, "boss")
    assert admin.get("/mydata/files/my-tunelake-data.zip").status_code == 403  # an admin has no own data


def test_upload_jobs_of_another_listener_are_invisible(as_a: Any, service: Any, serve_ws: Path) -> None:
    from tunelake.serve.upload import UploadJob

    hb = listeners(serve_ws)[1][1]
    job = UploadJob("feedfacefeedface", hb, "Streaming_History_Audio_2024.json", state="done",
                    summary={"read": 5})
    service.uploads._jobs[job.id] = job  # B's finished job, as the server keeps it
    assert as_a.get(f"/upload/{job.id}").status_code == 404
    b = service.test_client()
    sign_in(b, hb)
    assert b.get(f"/upload/{job.id}").get_json()["summary"] == {"read": 5}


def test_hostile_uploads_are_refused(as_a: Any, serve_ws: Path, tmp_path: Path) -> None:
    import io
    import zipfile

    token = dash_token(as_a)
    for name in ("../../secrets/x.json", "a/b.json", "export.exe", ".hidden.json", ""):
        resp = as_a.post("/upload", data=b"[]", headers={"X-CSRFToken": token, "X-Filename": name})
        assert resp.status_code == 400, name
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../evil/Streaming_History_Audio_2024.json", "[]")
    resp = as_a.post("/upload", data=buf.getvalue(), headers={"X-CSRFToken": token, "X-Filename": "my.zip"})
    assert resp.status_code == 400 and "unsafe path" in resp.get_json()["error"]
    assert not (serve_ws / "evil").exists()
    assert not any((serve_ws / "uploads").glob("*/*")) if (serve_ws / "uploads").exists() else True


def test_expired_and_spent_invites_are_refused(service: Any, serve_ws: Path) -> None:
    from tunelake.serve import accounts
    from tunelake.workspace import open_workspace

    ws = open_workspace(serve_ws)
    token, _ = accounts.invite(ws, "late-listener", hours=1)
    path = ws.secrets_dir / "accounts.json"
    data = json.loads(path.read_text())
    for inv in data["invites"].values():  # an hour and a minute later, as far as the invite knows
        inv["expires_at"] = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    path.write_text(json.dumps(data))
    client = service.test_client()
    assert client.get(f"/invite/{token}").status_code == 404
    csrf = csrf_of(client)
    assert client.post(f"/invite/{token}", data={"password": PASSWORD, "csrf_token": csrf}).status_code == 404
    assert accounts.get_account(ws, "late-listener") is None

    token, _ = accounts.invite(ws, "new-listener", hours=1)
    assert client.post(f"/invite/{token}", data={"password": PASSWORD, "csrf_token": csrf}).status_code == 302
    other = service.test_client()
    assert other.post(f"/invite/{token}", data={"password": "another password!",
                                                "csrf_token": csrf_of(other)}).status_code == 404
    assert accounts.verify(ws, "new-listener", PASSWORD) is not None
    assert (path.stat().st_mode & 0o777) == 0o600
    assert token not in path.read_text()


def test_login_brute_force_is_slowed(service: Any, serve_ws: Path) -> None:
    client = service.test_client()
    ha = listeners(serve_ws)[0][1]
    codes = [sign_in(client, ha, "wrong password!", addr="10.7.7.7").status_code for _ in range(5)]
    assert codes == [401] * 5
    assert sign_in(client, ha, "wrong password!", addr="10.7.7.7").status_code == 429
    assert sign_in(client, ha, PASSWORD, addr="10.7.7.7").status_code == 429  # even the right one, for a while
    assert sign_in(service.test_client(), ha, PASSWORD, addr="10.7.7.8").status_code == 302  # others still can


def test_session_cookie_flags(service: Any, serve_ws: Path) -> None:
    client = service.test_client()
    resp = sign_in(client, listeners(serve_ws)[0][1], addr="10.5.5.5")
    cookies = resp.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("tunelake_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session
    csrf = next(c for c in cookies if c.startswith("_csrf_token="))
    assert "SameSite=Strict" in csrf
    assert client.post("/logout", data={"csrf_token": csrf_of(client, "/account")}).status_code == 302
    assert client.get("/account").status_code == 302  # signed out


def test_binding_beyond_loopback_needs_accounts(tmp_path: Path) -> None:
    from tunelake.errors import ConfigError
    from tunelake.serve.app import check_bind
    from tunelake.workspace import open_workspace

    ws = open_workspace(tmp_path)
    check_bind(ws, "127.0.0.1")
    with pytest.raises(ConfigError, match="needs accounts") as exc:
        check_bind(ws, "0.0.0.0")
    assert "tunelake users add" in exc.value.one_line()


def test_spotify_callback_checks_the_state_and_disconnect_removes_the_token(as_a: Any, serve_ws: Path) -> None:
    from urllib.parse import parse_qs, urlsplit

    from tunelake.sources.spotify.auth import token_path
    from tunelake.workspace import open_workspace

    ha = listeners(serve_ws)[0][1]
    token = token_path(open_workspace(serve_ws), ha)
    assert as_a.get("/connect/callback?state=x&code=y").status_code == 400  # nothing was started
    resp = as_a.post("/connect", data={"csrf_token": csrf_of(as_a, "/account")})
    assert resp.status_code == 302
    url = urlsplit(resp.headers["Location"])
    q = parse_qs(url.query)
    assert url.path == "/accounts/authorize" and q["code_challenge_method"] == ["S256"]
    assert q["redirect_uri"] == ["http://localhost/connect/callback"] and len(q["state"][0]) >= 32
    forged = as_a.get("/connect/callback?state=forged-state&code=some-code")
    assert forged.status_code == 400 and b"state did not match" in forged.data
    assert not token.exists()
    # the pending connection was spent by that attempt: the right state no longer works either
    assert as_a.get(f"/connect/callback?state={q['state'][0]}&code=c").status_code == 400
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("{}")  # as if a connection had succeeded (the browser test does it for real)
    assert as_a.post("/disconnect", data={"csrf_token": csrf_of(as_a, "/account")}).status_code == 302
    assert not token.exists()


def test_behind_tls_cookies_are_secure(serve_ws: Path) -> None:
    from tunelake.dashboard.app import close_app
    from tunelake.serve.app import create_service
    from tunelake.workspace import open_workspace

    app = create_service(open_workspace(serve_ws).with_settings(serve_https="on", serve_proxies=1))
    try:
        client = app.test_client()
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        html = client.get("/login", headers=headers).get_data(as_text=True)
        token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        resp = client.post("/login", headers={**headers, "Referer": "https://localhost/login"},
                           data={"name": listeners(serve_ws)[0][1], "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 302
        cookies = resp.headers.getlist("Set-Cookie")
        assert all("Secure" in c for c in cookies if c.startswith(("tunelake_session=", "_csrf_token=")))
        # a POST over HTTPS from a foreign page (Referer of another origin) is refused even with a token
        other = client.post("/logout", headers={**headers, "Referer": "https://evil.example/"},
                            data={"csrf_token": token})
        assert other.status_code == 400
    finally:
        close_app(app.dash)


def test_every_callback_of_an_admin_page_is_refused_to_a_listener(as_a: Any, serve_ws: Path) -> None:
    """Callbacks a page registers itself (the segment map's clicks) included: each is asked for the second
    listener's data, and a listener gets 403 from every one that touches an admin page's components or an
    admin-only chart (the recommender evaluation)."""
    from tunelake.dashboard.pages import PAGES

    kb, hb = listeners(serve_ws)[1]
    admin_ids: set[str] = {c.id for p in PAGES for c in p.charts if c.admin_only}
    assert admin_ids == {"rec-metrics", "rec-evaluation"}
    stack: list[Any] = [p.layout(None) for p in PAGES if p.admin_only]
    while stack:
        node = stack.pop()
        if isinstance(node, list | tuple):
            stack.extend(node)
        elif node is not None and not isinstance(node, str | int | float):
            if isinstance(getattr(node, "id", None), str):
                admin_ids.add(node.id)
            stack.append(getattr(node, "children", None))
    deps = as_a.get("/_dash-dependencies").get_json()
    touched = 0
    for d in deps:
        ins = [{"id": i["id"], "property": i["property"], "value": {"user": str(kb)} if i["id"] == "filters"
                else str(kb)} for i in d["inputs"]]
        out = d["output"]
        parts = out.strip(".").split("...") if out.startswith("..") else [out]
        ids = {p.split(".", 1)[0] for p in parts} | {i["id"] for i in d["inputs"]}
        if not ids & admin_ids:
            continue
        touched += 1
        outputs = [dict(zip(("id", "property"), p.split(".", 1), strict=True)) for p in parts]
        body = {"output": out, "outputs": outputs if out.startswith("..") else outputs[0], "inputs": ins,
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in ins], "state": []}
        resp = as_a.post("/_dash-update-component", json=body, headers={"X-CSRFToken": dash_token(as_a)})
        assert resp.status_code == 403, (out, resp.status_code)
        assert hb.encode() not in resp.data
    admin_charts = sum(1 for p in PAGES for c in p.charts if p.admin_only or c.admin_only)
    assert touched >= admin_charts + 2  # every admin chart, and the two click callbacks of the segment map


def test_a_removed_account_is_signed_out_at_its_next_request(service: Any, serve_ws: Path) -> None:
    """The service reads accounts from a cached snapshot of accounts.json: removing an account (from another
    process, as `tunelake users remove` does) must still end its session at once."""
    from tunelake.serve import accounts
    from tunelake.workspace import open_workspace

    ws = open_workspace(serve_ws)
    accounts.add_account(ws, "short-stay", "listener", PASSWORD)
    client = service.test_client()
    assert sign_in(client, "short-stay").status_code == 302
    assert client.get("/account").status_code == 200  # signed in: the snapshot now holds the account
    assert accounts.remove_account(ws, "short-stay")
    resp = client.get("/account")
    assert resp.status_code in (302, 401) and b"short-stay" not in resp.data
    resp = _post_chart(client, "kpis", "children", {})
    assert resp.status_code in (400, 401) and b'"response"' not in resp.data
