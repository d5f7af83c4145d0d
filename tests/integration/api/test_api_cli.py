"""The API commands end to end through Typer: login, pull, playlist push; the token never shows up anywhere."""

from __future__ import annotations

import logging
import re
import socket
import stat
import threading
import time
from pathlib import Path

import orjson
import pytest
import requests
import typer
from typer.testing import CliRunner

from tunelake.cli.api import register
from tunelake.curate import pull
from tunelake.errors import SourceError
from tunelake.sources.spotify import auth, client
from tunelake.synthetic.server import FakeSpotify, parse_fault_spec
from tunelake.workspace import Workspace, open_workspace


def make_app(cfg: Workspace) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.ensure_object(dict)["workspace"] = cfg

    register(app)
    return app


def test_login_pull_push_never_leak_the_token(
    cfg: Workspace, server: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything any library logs, Spotipy and urllib3 included
    app = make_app(cfg)
    runner = CliRunner()
    out = []
    res = runner.invoke(app, ["auth", "login", "--user", "listener-0001", "--auto"])
    assert res.exit_code == 0, res.output
    assert "Logged in listener-0001 as Spotify user listener-0001" in res.output
    out.append(res.output)
    path = auth.token_path(cfg, "listener-0001")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = orjson.loads(path.read_bytes())
    server.expire_tokens()  # forces a refresh during the pull: a second token to keep secret
    res = runner.invoke(app, ["pull", "--user", "listener-0001", "--what", "recent,top,profile"])
    assert res.exit_code == 0, res.output
    assert "plays read" in res.output
    out.append(res.output)
    second = orjson.loads(path.read_bytes())
    assert second["access_token"] != first["access_token"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    res = runner.invoke(
        app,
        ["playlist", "push", "--user", "listener-0001", "--name", "recs", "--tracks", "-"],
        input="\n".join(sorted(server.world.tracks)[:4]) + "\n",
    )
    assert res.exit_code == 0, res.output
    assert "Created playlist 'recs'" in res.output and "with 4 tracks" in res.output
    out.append(res.output)
    everything = "\n".join(out) + "\n".join(r.getMessage() for r in caplog.records)
    for tok in (first, second):
        assert tok["access_token"] not in everything
        assert tok["refresh_token"] not in everything
    # and nothing in the lake holds them either
    lake_bytes = b"".join(p.read_bytes() for p in (cfg.root / "lake").rglob("*") if p.is_file())
    assert first["access_token"].encode() not in lake_bytes and second["refresh_token"].encode() not in lake_bytes


def test_pull_unknown_what_and_not_logged_in(cfg: Workspace) -> None:
    app = make_app(cfg)
    res = CliRunner().invoke(app, ["pull", "--user", "listener-0002", "--what", "recent,bogus"])
    assert res.exit_code != 0 and "bogus" in str(res.exception)


def test_fault_spec_drives_the_server(cfg: Workspace, server: FakeSpotify) -> None:
    pull.login(cfg, "listener-0003", method="auto")
    server.apply_faults(parse_fault_spec("429x2:1,503x1"))
    waits: list[float] = []
    r = pull.pull(cfg, "listener-0003", ["profile"], policy=client.RetryPolicy(sleep=waits.append, backoff_base_s=0.01))
    assert waits == [1, 1, 0.01] and r.calls["rate_limited"] == 2 and r.calls["server_errors"] == 1


def _browser(url: str, listener: str) -> requests.Response:
    """What the user's browser does: open the authorise URL, approve as `listener`, follow the redirect."""
    return requests.get(f"{url}&login_hint={listener}", timeout=10)


def test_login_by_pasting_the_redirect_url(cfg: Workspace, server: FakeSpotify) -> None:
    def prompt(text: str) -> str:
        url = re.search(r"(http://\S+/authorize\?\S+)", text).group(1)
        resp = requests.get(f"{url}&login_hint=listener-0002", allow_redirects=False, timeout=10)
        return resp.headers["Location"]

    info = pull.login(cfg, "bob", method="paste", listener=None, prompt=prompt)
    assert info["spotify_id"] == "listener-0002"  # the account that approved, under the workspace handle "bob"
    with pytest.raises(SourceError, match="state did not match"):
        pull.login(cfg, "bob", method="paste", response_url="http://127.0.0.1:1/callback?code=x&state=forged")


def test_login_with_the_local_redirect_listener(tmp_path: Path, server: FakeSpotify) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = open_workspace(
        tmp_path / "ws",
        {
            "spotify_api_url": server.api_url,
            "spotify_accounts_url": server.accounts_url,
            "spotify_client_id": "tunelake-test",
            "spotify_redirect_uri": f"http://127.0.0.1:{port}/callback",
        },
    )
    seen: list[int] = []

    def say(text: str) -> None:  # called once the listener is up: the "browser" approves in the background
        url = re.search(r"(http://\S+/authorize\?\S+)", text).group(1)
        threading.Thread(target=lambda: seen.append(_browser(url, "listener-0006").status_code)).start()

    info = pull.login(cfg, "carol", method="listen", open_browser=False, say=say)
    assert info["spotify_id"] == "listener-0006" and seen == [200]
    assert auth.token_path(cfg, "carol").exists()


def test_slow_responses_are_waited_for(cfg: Workspace, server: FakeSpotify, logged_in: str) -> None:
    server.faults.add("slow", count=1, delay=0.4, path="/v1/me")
    t0 = time.perf_counter()
    pull.pull(cfg, logged_in, ["profile"])
    assert time.perf_counter() - t0 >= 0.4
