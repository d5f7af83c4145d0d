"""The served dashboard over real HTTP: a request whose `Host` is not an allowed name (what a DNS-rebinding page
sends) gets a plain-text 400 on every kind of route, a crafted filter gets a 400 too, and `serve` itself binds
loopback by default. Requests are written on a raw socket so the `Host` header is exactly the one under test."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest


def raw(url: str, path: str, host: str, method: str = "GET", body: bytes = b"",
        content_type: str = "application/json") -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with this exact Host header: (status, headers, body)."""
    u = urlsplit(url)
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    with socket.create_connection((u.hostname, u.port), timeout=20) as s:
        s.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    top, _, payload = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, payload


KPIS = json.dumps({"output": "kpis.children", "outputs": {"id": "kpis", "property": "children"},
                   "inputs": [{"id": "filters", "property": "data", "value": {}}],
                   "changedPropIds": ["filters.data"], "state": []}).encode()
ROUTES = [("GET", "/", b""), ("GET", "/taste", b""), ("GET", "/_dash-layout", b""),
          ("GET", "/_dash-dependencies", b""), ("GET", "/assets/style.css", b""), ("GET", "/_favicon.ico", b""),
          ("POST", "/_dash-update-component", KPIS)]


def test_a_rebinding_host_gets_400_on_every_route(dash_url: str, caplog: pytest.LogCaptureFixture) -> None:
    port = urlsplit(dash_url).port
    caplog.set_level(logging.INFO)
    for method, path, body in ROUTES:
        status, _, page = raw(dash_url, path, f"127.0.0.1:{port}", method, body)
        assert status == 200, (path, page[:200])
        for host in (f"rebind.evil.example:{port}", "evil.example", f"localhost.evil.example:{port}"):
            status, headers, page = raw(dash_url, path, host, method, body)
            assert status == 400, (path, host, status)
            assert headers["content-type"].startswith("text/plain")
            assert b"dashboard_allowed_hosts" in page and len(page) < 300
    assert not any(r.exc_info for r in caplog.records)


def test_loopback_names_are_answered(dash_url: str) -> None:
    port = urlsplit(dash_url).port
    for host in (f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
        status, _, page = raw(dash_url, "/_dash-layout", host)
        assert status == 200, host
        assert json.loads(page)["props"]["className"] == "app"


def test_a_crafted_filter_gets_400_over_http(dash_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    body = json.loads(KPIS)
    body["inputs"][0]["value"] = {"start": "2024-13-45", "user": "'; DROP"}
    status, headers, page = raw(dash_url, "/_dash-update-component", "127.0.0.1",
                                "POST", json.dumps(body).encode())
    assert status == 400
    assert headers["content-type"].startswith("text/plain")
    assert page.startswith(b"400 Bad Request: field '") and len(page) < 200
    assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text


def _listening(pid: int) -> list[tuple[str, int]]:
    import psutil

    proc = psutil.Process(pid)
    conns = proc.net_connections(kind="inet") if hasattr(proc, "net_connections") else proc.connections("inet")
    return [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]


def test_serve_binds_loopback_by_default(dash_workspace: Path, tmp_path: Path, requires: Any) -> None:
    """`serve` with no host, in a process of its own: it listens on 127.0.0.1 only, prints no warning, and
    answers only the allowed Host names."""
    requires("psutil")
    import tunelake

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import sys; from tunelake.workspace import open_workspace; from tunelake.dashboard.app import serve; "
            "serve(open_workspace(sys.argv[1]), port=int(sys.argv[2]))")
    env = {**os.environ, "PYTHONPATH": str(Path(tunelake.__file__).parents[1])}
    env.pop("TUNELAKE_DASHBOARD_HOST", None)
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, str(dash_workspace), str(port)], env=env,
                                stdout=err, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start listening"
                time.sleep(0.2)
        assert _listening(proc.pid) == [("127.0.0.1", port)]
        url = f"http://127.0.0.1:{port}"
        assert raw(url, "/_dash-layout", f"localhost:{port}")[0] == 200
        assert raw(url, "/_dash-layout", f"rebind.evil.example:{port}")[0] == 400
        assert "WARNING: binding" not in log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def test_serve_warns_beyond_loopback_and_names_the_setting(dash_workspace: Path) -> None:
    from tunelake.dashboard.app import serve
    from tunelake.workspace import open_workspace

    said: list[str] = []
    with pytest.raises((OSError, OverflowError, ValueError, AssertionError)):
        serve(open_workspace(dash_workspace), host="0.0.0.0", port=-1, say=said.append)
    assert said[0].startswith("WARNING") and "dashboard_allowed_hosts" in said[0]
    said.clear()
    with pytest.raises((OSError, OverflowError, ValueError, AssertionError)):
        serve(open_workspace(dash_workspace), port=-1, say=said.append)
    assert said and not any(s.startswith("WARNING") for s in said)
    assert "http://127.0.0.1:-1/" in said[0]

