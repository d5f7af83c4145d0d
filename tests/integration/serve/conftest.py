"""The real service (`create_service`) over a copy of the session's demo workspace, with an admin and two of the
demo's listeners as accounts, reached through Flask's test client: sessions, CSRF tokens and the limiter are the
real ones, so a test that signs in does exactly what a browser does."""

from __future__ import annotations

import itertools
import re
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def serve_ws(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory, requires: Any) -> Path:
    for mod in ("flask_login", "flask_wtf", "flask_limiter", "argon2", "dash"):
        requires(mod)
    from tunelake.serve import accounts
    from tunelake.workspace import open_workspace

    root = tmp_path_factory.mktemp("serve-ws") / "ws"
    shutil.copytree(demo_workspace, root, ignore=shutil.ignore_patterns("*.lock", "lock*"))
    # many sign-ins from one test run: the per-name limit is tested through its setting's value elsewhere
    (root / "tunelake.toml").write_text('serve_login_rate_per_name = "500 per hour"\nspotify_client_id = "test-app"\n'
                                        'spotify_accounts_url = "http://127.0.0.1:9/accounts"\n')
    ws = open_workspace(root)
    a, b = listeners(root)[:2]
    accounts.add_account(ws, "boss", "admin", PASSWORD)
    accounts.add_account(ws, a[1], "listener", PASSWORD)
    accounts.add_account(ws, b[1], "listener", PASSWORD)
    return root


def listeners(root: Path) -> list[tuple[int, str]]:
    """(user_key, handle) of every listener in the current warehouse, read with plain DuckDB."""
    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    con = duckdb.connect(str(current_warehouse_file(open_workspace(root))), read_only=True)
    try:
        return [(int(k), h) for k, h in con.execute("SELECT user_key, handle FROM dim_user ORDER BY handle").fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def service(serve_ws: Path) -> Any:
    from tunelake.dashboard.app import close_app
    from tunelake.serve.app import create_service
    from tunelake.workspace import open_workspace

    app = create_service(open_workspace(serve_ws))
    app.config["TESTING"] = False  # keep CSRF and the limiter on, as in production
    yield app
    close_app(app.dash)


def csrf_of(client: Any, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, f"no CSRF token on {path}"
    return m.group(1)


_ADDRS = itertools.count(1)


def sign_in(client: Any, name: str, password: str = PASSWORD, addr: str | None = None) -> Any:
    """Sign in from `addr` (default: an address of its own, so the per-address limiter stays out of the way)."""
    addr = addr or f"10.9.{next(_ADDRS) // 250}.{next(_ADDRS) % 250 + 1}"
    client.environ_base["REMOTE_ADDR"] = addr  # the session is bound to it (session_protection = strong)
    token = csrf_of(client)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})


def dash_token(client: Any) -> str:
    """What Dash's renderer sends as X-CSRFToken: the `_csrf_token` cookie the server set."""
    cookie = client.get_cookie("_csrf_token")
    assert cookie is not None
    return cookie.value


def chart_body(chart_id: str, prop: str, store: dict[str, Any]) -> dict[str, Any]:
    return {"output": f"{chart_id}.{prop}", "outputs": {"id": chart_id, "property": prop},
            "inputs": [{"id": "filters", "property": "data", "value": store}],
            "changedPropIds": ["filters.data"], "state": []}
