"""Browser fixtures: one small demo workspace per session, the Dash server in a background thread on a free
loopback port, and headless Debian Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _shared() -> Any:
    """tests/conftest.py as a module (its `require` helper), whichever way pytest was started."""
    import importlib.util
    import sys

    name = "tunelake_tests_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


require = _shared().require
IN_CI = _shared().IN_CI

ARTIFACTS = Path(__file__).resolve().parents[2] / "tests" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    for candidate in (os.environ.get("TUNELAKE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    message = "headless Chromium not found (apt-get install chromium, or set TUNELAKE_CHROMIUM)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def dash_workspace(demo_workspace: Path) -> Path:
    """The shared demo workspace, with analytics (segments, recommendations) when the demo did not add them."""
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    cfg = open_workspace(demo_workspace)
    con = open_warehouse(cfg)
    has_segments = con.execute("SELECT count(*) FROM information_schema.tables "
                               "WHERE table_name = 'user_segment'").fetchone()[0]
    con.close()
    if not has_segments:
        try:
            from tunelake.analytics.steps import run_analytics
        except ImportError:
            return demo_workspace
        from tunelake.warehouse.store import warehouse_writer

        with warehouse_writer(cfg, "analytics") as con:
            run_analytics(cfg, con, "test-analytics")
    return demo_workspace


@pytest.fixture(scope="session")
def dash_url(dash_workspace: Path) -> Iterator[str]:
    require("dash")
    from werkzeug.serving import make_server

    from tunelake.dashboard.app import create_app
    from tunelake.workspace import open_workspace

    app = create_app(open_workspace(dash_workspace))
    port = free_port()
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dash-e2e", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=10)
    app._tunelake_warehouse.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    require("playwright", "pip install playwright (the browser itself is Debian's chromium)")
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Console:
    """Console errors and failed requests seen by one page (a Dash callback error shows up as both)."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error"
                else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("response", lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)


@pytest.fixture(scope="module")
def _shared_page(browser: Any) -> Iterator[Any]:
    """One browser tab per test module: Plotly's 4 MB bundle is parsed once, and pages are reached the way a
    person does, through the navigation links (client-side routing)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.console_log = Console(pg)
    pg.requests_seen = []
    pg.on("request", lambda r: pg.requests_seen.append(r.url))
    yield pg
    ctx.close()


@pytest.fixture()
def page(_shared_page: Any) -> Any:
    """The shared tab with this test's own error log (errors from an earlier test do not leak in)."""
    _shared_page.console_log.errors.clear()
    _shared_page.requests_seen.clear()
    return _shared_page


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
