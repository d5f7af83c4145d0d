"""Allowed `Host` names (against DNS rebinding), through Flask's test client of the real app: every route answers
the loopback names and refuses any other name with a short plain-text 400; the setting and the bound address
add names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

FOREIGN = ["evil.example", "evil.example:8050", "localhost.evil.example", "127.0.0.1.nip.io:8050",
           "evil.example@127.0.0.1", "127.0.0.1/evil", "[::2]:8050", "localhost:99999", ""]
LOOPBACK = ["127.0.0.1", "127.0.0.1:8050", "localhost", "localhost:1", "LOCALHOST:8050", "[::1]", "[::1]:8050"]


def _routes(client: Any, callbacks: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, extra) for one request of every kind the dashboard serves, read from its own index page."""
    index = client.get("/", headers={"Host": "127.0.0.1"}).get_data(as_text=True)
    suite = next(u for u in re.findall(r'src="([^"]+)"', index) if u.startswith("/_dash-component-suites/"))
    asset = next(u for u in re.findall(r'href="([^"]+)"', index) if u.startswith("/assets/"))
    kpis = callbacks.body("filters.data", [{}], "kpis.children")
    return [("GET", "/", {}), ("GET", "/patterns", {}), ("GET", "/_dash-layout", {}),
            ("GET", "/_dash-dependencies", {}), ("GET", asset, {}), ("GET", suite, {}),
            ("GET", "/_favicon.ico", {}), ("POST", "/_dash-update-component", {"json": kpis})]


def test_every_route_refuses_a_foreign_host(client: Any, callbacks: Any) -> None:
    for method, path, extra in _routes(client, callbacks):
        ok = client.open(path, method=method, headers={"Host": "127.0.0.1:8050"}, **extra)
        assert ok.status_code == 200, (path, ok.status_code)  # the route works: a 400 below is the host check
        for host in FOREIGN:
            resp = client.open(path, method=method, headers={"Host": host}, **extra)
            body = resp.get_data(as_text=True)
            assert resp.status_code == 400, (path, host, resp.status_code)
            assert resp.mimetype == "text/plain" and len(body) < 300, (path, host, body[:300])
            assert "dashboard_allowed_hosts" in body
            assert "tunelake" not in body  # nothing of the page itself


def test_a_foreign_host_gets_400_before_the_405_of_a_write(client: Any) -> None:
    assert client.put("/", headers={"Host": "localhost"}).status_code == 405
    assert client.put("/", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_names_are_answered_on_any_port(client: Any, host: str) -> None:
    resp = client.get("/_dash-layout", headers={"Host": host})
    assert resp.status_code == 200
    assert resp.get_json()["props"]["className"] == "app"


def _app(ws: Path, bound: str | None = None, **settings: Any) -> Any:
    from tunelake.dashboard.app import create_app
    from tunelake.workspace import open_workspace

    app = create_app(open_workspace(ws, overrides=settings), host=bound)
    return app


def _status(app: Any, host: str) -> int:
    return app.server.test_client().get("/_dash-layout", headers={"Host": host}).status_code


def test_setting_adds_names_for_a_reverse_proxy(dash_ws: Path) -> None:
    app = _app(dash_ws, dashboard_allowed_hosts=" dash.example.org, Proxy.Internal:8443 ,")
    try:
        assert _status(app, "dash.example.org") == 200
        assert _status(app, "dash.example.org:443") == 200
        assert _status(app, "proxy.internal:8443") == 200
        assert _status(app, "proxy.internal") == 200
        assert _status(app, "other.example.org") == 400
        assert _status(app, "example.org") == 400
        assert _status(app, "sub.dash.example.org") == 400
        assert _status(app, "localhost:8050") == 200
    finally:
        app._tunelake_warehouse.close()


def test_setting_from_the_environment(dash_ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNELAKE_DASHBOARD_ALLOWED_HOSTS", "tunes.lan,[fd00::5]")
    app = _app(dash_ws)
    try:
        assert _status(app, "tunes.lan:8050") == 200
        assert _status(app, "[fd00::5]:8050") == 200
        assert _status(app, "[fd00::6]:8050") == 400
    finally:
        app._tunelake_warehouse.close()


def test_the_bound_address_is_answered(dash_ws: Path) -> None:
    app = _app(dash_ws, bound="192.0.2.10")
    try:
        assert _status(app, "192.0.2.10:8050") == 200
        assert _status(app, "192.0.2.11:8050") == 400
    finally:
        app._tunelake_warehouse.close()
    app = _app(dash_ws, dashboard_host="::")  # the configured bind address when none is passed
    try:
        assert _status(app, "[::]:8050") == 200
        assert _status(app, "192.0.2.10:8050") == 400
    finally:
        app._tunelake_warehouse.close()


@pytest.mark.parametrize("bad", ["dash.example.org/path", "user@dash.example.org", "host:port", "a b"])
def test_an_invalid_setting_is_a_config_error(dash_ws: Path, bad: str) -> None:
    from tunelake.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dashboard_allowed_hosts.*is not a host name"):
        _app(dash_ws, dashboard_allowed_hosts=f"ok.example,{bad}")
