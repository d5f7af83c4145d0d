"""The API commands end to end through Typer: login, pull, playlist push; the token never shows up anywhere."""

from __future__ import annotations

import logging
import stat

import orjson
import pytest
import typer
from typer.testing import CliRunner

from tunelake.cli_api import register
from tunelake.config import Config
from tunelake.sources import spotify_api as api
from tunelake.synthetic.server import FakeSpotify, parse_fault_spec


def make_app(cfg: Config) -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.ensure_object(dict)["config"] = cfg

    register(app)
    return app


def test_login_pull_push_never_leak_the_token(
    cfg: Config, server: FakeSpotify, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything any library logs, Spotipy and urllib3 included
    app = make_app(cfg)
    runner = CliRunner()
    out = []
    res = runner.invoke(app, ["auth", "login", "--user", "listener-0001", "--auto"])
    assert res.exit_code == 0, res.output
    assert "Logged in listener-0001 as Spotify user listener-0001" in res.output
    out.append(res.output)
    path = api.token_path(cfg, "listener-0001")
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
    lake_bytes = b"".join(p.read_bytes() for p in (cfg.workspace / "lake").rglob("*") if p.is_file())
    assert first["access_token"].encode() not in lake_bytes and second["refresh_token"].encode() not in lake_bytes


def test_pull_unknown_what_and_not_logged_in(cfg: Config) -> None:
    app = make_app(cfg)
    res = CliRunner().invoke(app, ["pull", "--user", "listener-0002", "--what", "recent,bogus"])
    assert res.exit_code != 0 and "bogus" in str(res.exception)


def test_fault_spec_drives_the_server(cfg: Config, server: FakeSpotify) -> None:
    api.login(cfg, "listener-0003", method="auto")
    server.apply_faults(parse_fault_spec("429x2:1,503x1"))
    waits: list[float] = []
    r = api.pull(cfg, "listener-0003", ["profile"], policy=api.RetryPolicy(sleep=waits.append, backoff_base_s=0.01))
    assert waits == [1, 1, 0.01] and r.calls["rate_limited"] == 2 and r.calls["server_errors"] == 1
