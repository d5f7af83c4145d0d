"""`tunelake serve` in a real browser (headless Debian Chromium via Playwright), start to finish: an admin invites a
listener; the listener signs in, uploads a real export (../shared/data/real, as a zip), sees the numbers
`tunelake insights` gives for it, connects Spotify through the fake accounts service, downloads their data and
deletes it — after which a scan of every file of the workspace (lake, warehouse, secrets, logs) finds none of
their handle, user key, personal fields or play rows.

The expected numbers come from the CLI (`tunelake insights --format json`, another process) and from the export
file itself, not from the code the page calls."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytestmark = pytest.mark.browser

HANDLE = "zelda-upload"
PASSWORD = "a long enough password"
EXPORT = "CandidlyRed__spotify/endsong.json"
REPO = Path(__file__).resolve().parents[2]


def _cli(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-m", "tunelake.cli", "-w", str(root), *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def fake_spotify(small_world: Path, requires: Any) -> Iterator[Any]:
    requires("spotipy")
    from tunelake.synthetic.server import FakeSpotify

    with FakeSpotify(small_world) as srv:
        yield srv


@pytest.fixture(scope="module")
def service(demo_workspace: Path, fake_spotify: Any, tmp_path_factory: pytest.TempPathFactory,
            requires: Any) -> Iterator[tuple[str, Path]]:
    for mod in ("flask_login", "flask_wtf", "flask_limiter", "argon2", "dash"):
        requires(mod)
    from werkzeug.serving import make_server

    from tunelake.dashboard.app import close_app
    from tunelake.serve.app import create_service, start_collector
    from tunelake.workspace import open_workspace

    from .conftest import free_port

    root = tmp_path_factory.mktemp("serve-e2e") / "ws"
    shutil.copytree(demo_workspace, root)
    (root / "tunelake.toml").write_text(
        f'spotify_api_url = "{fake_spotify.api_url}"\nspotify_accounts_url = "{fake_spotify.accounts_url}"\n'
        'spotify_client_id = "tunelake-test"\n')
    _cli(root, "users", "add", "boss", "--role", "admin", "--password", PASSWORD)
    app = create_service(open_workspace(root))
    said: list[str] = []
    collector = start_collector(open_workspace(root), said.append)  # as `tunelake serve` runs it
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="serve-e2e", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", root
    server.shutdown()
    thread.join(timeout=10)
    collector.stop.set()
    for t in threading.enumerate():
        if t.name == "tunelake-serve-collector":
            t.join(timeout=60)
    assert said == []  # the collector started (no other one held the workspace)
    close_app(app.dash)


def _sign_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("#signin")
    page.wait_for_url(f"{base}/")


def _kpi(page: Any, key: str) -> str:
    page.wait_for_function(f"() => document.querySelector('#kpi-{key}') !== null", timeout=30_000)
    return page.get_attribute(f"#kpi-{key}", "data-value")


def _text_of(path: Path) -> str:
    """What a file holds, as text a needle can be found in: decompressed, Parquet as CSV-ish rows."""
    data = path.read_bytes()
    if path.suffix == ".parquet":
        con = duckdb.connect()
        rows = con.execute(f"SELECT * FROM read_parquet('{path}')").fetchall()
        cols = [d[0] for d in con.description]
        con.close()
        return " ".join(cols) + "\n" + "\n".join(" ".join(str(v) for v in r) for r in rows)
    if path.suffix == ".duckdb":
        return ""  # scanned table by table in _scan_warehouse
    if data[:4] == b"\x28\xb5\x2f\xfd":  # zstd
        import pyarrow as pa

        data = pa.CompressedInputStream(pa.BufferReader(data), "zstd").read()
    elif data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


def _scan_warehouse(path: Path, user_key: int, needles: list[str]) -> list[str]:
    found = []
    con = duckdb.connect(str(path), read_only=True)
    try:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                    "WHERE table_schema = 'main'").fetchall():
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            if "user_key" in cols:
                n = con.execute(f"SELECT count(*) FROM {table} WHERE user_key = {user_key}").fetchall()[0][0]
                if n:
                    found.append(f"{path.name}:{table}: {n} rows of the listener")
            row = "concat_ws(' ', " + ", ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '')" for c in cols) + ")"
            for needle in needles:
                if con.execute(f"SELECT count(*) FROM {table} WHERE contains({row}, ?)", [needle]).fetchall()[0][0]:
                    found.append(f"{path.name}:{table}: {needle!r}")
    finally:
        con.close()
    return found


def scan_workspace(root: Path, user_key: int, needles: list[str]) -> list[str]:
    """Every file under the workspace that still holds the listener: (file, needle) findings."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix == ".duckdb":
            found += _scan_warehouse(path, user_key, needles)
            continue
        text = _text_of(path)
        found += [f"{path.relative_to(root)}: {n!r}" for n in needles if n in text]
        if path.suffix == ".parquet" and "user_key" in text.split("\n", 1)[0]:
            con = duckdb.connect()
            n = con.execute(f"SELECT count(*) FROM read_parquet('{path}') WHERE user_key = {user_key}").fetchall()
            con.close()
            if n[0][0]:
                found.append(f"{path.relative_to(root)}: {n[0][0]} rows of the listener")
    return found


def test_invite_upload_insights_connect_download_delete(service: tuple[str, Path], browser: Any, real_dir: Path,
                                                       tmp_path: Path) -> None:
    from tunelake.lake.manifest import user_key_for

    base, root = service
    export = real_dir / EXPORT
    rows = json.loads(export.read_text())
    upload = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(export, "Spotify Extended Streaming History/endsong.json")

    # an admin invites the listener
    admin = browser.new_context().new_page()
    _sign_in(admin, base, "boss")
    admin.goto(f"{base}/account")
    admin.fill("#invite-name", HANDLE)
    admin.click("#invite-button")
    link = admin.inner_text("#invite-link").strip()
    assert link.startswith(f"{base}/invite/")
    admin.click("#logout")
    admin.wait_for_url(f"{base}/login")

    # the listener accepts it and uploads their export
    ctx = browser.new_context(accept_downloads=True)
    page = ctx.new_page()
    page.goto(link)
    page.fill("#password", PASSWORD)
    page.click("#accept")
    page.wait_for_url(f"{base}/account")
    assert page.inner_text("#whoami") == HANDLE
    page.set_input_files("#upload-file", str(upload))
    page.click("#upload-button")
    page.wait_for_function("() => ['done', 'failed'].includes(document.querySelector('#upload-state').dataset.state)",
                           timeout=240_000)
    assert page.get_attribute("#upload-state", "data-state") == "done", page.inner_text("#upload-state")
    summary = {k: page.inner_text(f"#summary-{k}") for k in ("read", "accepted", "duplicates", "merged")}
    assert int(summary["read"]) == len(rows)
    assert int(page.get_attribute("#upload-progress", "value")) == 100

    # the dashboard shows the numbers `tunelake insights` gives for this export, and only them
    page.goto(f"{base}/")
    cli = json.loads(_cli(root, "insights", "--user", HANDLE, "--format", "json"))
    assert int(_kpi(page, "plays")) == cli["plays"]
    assert 0 < cli["plays"] <= int(summary["accepted"])  # accepted also counts episodes, kept apart from plays
    assert float(_kpi(page, "hours")) == pytest.approx(cli["hours"], rel=1e-12)
    assert int(_kpi(page, "streams")) == cli["streams"]
    assert int(_kpi(page, "distinct-artists")) == cli["distinct_artists"]
    assert _kpi(page, "listeners") == "1"
    assert page.locator("#nav-segments").count() == 0

    # their own Year in review; Compare offers nobody until they switch it on, then nobody else agreed yet
    page.click("#nav-wrapped")
    page.wait_for_selector("#wrapped-title")
    assert page.inner_text("#wrapped-title").startswith(f"{HANDLE} · ")
    page.click("#nav-compare")
    page.wait_for_selector("#compare-note:has-text('account page')")
    page.goto(f"{base}/account")
    page.click("#compare-on")
    page.wait_for_url(f"{base}/account?m=compare-on")
    assert "You agreed" in page.inner_text("#compare-state")
    page.goto(f"{base}/compare")
    page.wait_for_selector("#compare-note:has-text('0 other listeners agreed')")

    # connect Spotify through the fake accounts service
    page.goto(f"{base}/account")
    page.click("#connect")
    page.wait_for_selector("text=Fake Spotify: log in as")
    page.click("li a >> nth=0")
    page.wait_for_load_state("load")
    page.wait_for_selector("#spotify")
    assert page.url == f"{base}/account?m=connected", page.inner_text("body")[:500]
    assert "Connected" in page.inner_text("#spotify-state")
    token = root / "secrets" / "tokens" / f"{HANDLE}.json"
    assert token.exists() and (token.stat().st_mode & 0o777) == 0o600
    assert json.loads(token.read_text())["refresh_token"]
    state = root / "lake" / "_manifest" / "collect" / f"{HANDLE}.json"
    page.wait_for_timeout(500)
    for _ in range(120):  # the collector beside the server picks the new token up and polls it
        if state.exists():
            break
        page.wait_for_timeout(500)
    assert state.exists(), "the collector never polled the connected listener"

    # download my data: only this listener's rows
    with page.expect_download() as dl:
        page.click("#download")
    got = tmp_path / "mine.zip"
    dl.value.save_as(got)
    with zipfile.ZipFile(got) as zf:
        zf.extractall(tmp_path / "mine")
    fact = tmp_path / "mine" / "parquet" / "fact_play.parquet"
    keys = duckdb.sql(f"SELECT user_key, count(*) FROM '{fact}' GROUP BY 1").fetchall()
    assert len(keys) == 1 and keys[0][0] == user_key_for(HANDLE)
    assert keys[0][1] >= cli["plays"]  # the export's plays, and whatever the collector has added since

    # delete my data: then nothing of theirs is anywhere in the workspace
    page.fill("#delete-confirm", HANDLE)
    page.click("#delete")
    page.wait_for_url(f"{base}/login?deleted=1", timeout=240_000)
    key = user_key_for(HANDLE)
    needles = [HANDLE, str(key)]
    needles += sorted({r["username"] for r in rows if r.get("username")})
    needles += sorted({r["ip_addr_decrypted"] for r in rows if r.get("ip_addr_decrypted")})[:20]
    needles += sorted({r["platform"] for r in rows if "(" in (r.get("platform") or "")})  # full device strings
    needles += [r["ts"] for r in rows[:25]] + [r["ts"].replace("T", " ").rstrip("Z") for r in rows[:25]]
    assert not token.exists()
    left = scan_workspace(root, key, needles)
    assert left == [], "\n".join(left)
    assert "zelda" not in _cli(root, "users", "list")

    # and the admin still sees everyone else
    _sign_in(admin, base, "boss")
    assert int(_kpi(admin, "listeners")) == 28
    ctx.close()
