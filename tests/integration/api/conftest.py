"""Fixtures for the Spotify API tests: one small synthetic world per session, a fresh fake server per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _need(module: str) -> None:
    """A missing dependency skips locally with a reason; under CI it is a failure, never a skip."""
    if os.environ.get("CI") == "true":
        __import__(module)
    else:
        pytest.importorskip(module, reason=f"{module} is not installed (pip install 'tunelake[api,dev]')")


for _module in ("spotipy", "werkzeug", "requests"):
    _need(_module)

from tunelake.curate import pull  # noqa: E402
from tunelake.synthetic.server import FakeSpotify  # noqa: E402
from tunelake.synthetic.world import generate_world  # noqa: E402
from tunelake.workspace import Workspace, open_workspace  # noqa: E402


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("api-world")
    generate_world(out, users=6, days=21, seed=11)
    return out


@pytest.fixture
def server(world: Path) -> Iterator[FakeSpotify]:
    with FakeSpotify(world) as srv:
        yield srv


@pytest.fixture
def dev_server(world: Path) -> Iterator[FakeSpotify]:
    with FakeSpotify(world, dev_mode=True) as srv:
        yield srv


def make_cfg(workspace: Path, srv: FakeSpotify, **overrides: object) -> Workspace:
    return open_workspace(
        workspace,
        {
            "spotify_api_url": srv.api_url,
            "spotify_accounts_url": srv.accounts_url,
            "spotify_client_id": "tunelake-test",
            **overrides,
        },
    )


@pytest.fixture
def cfg(tmp_path: Path, server: FakeSpotify) -> Workspace:
    return make_cfg(tmp_path / "ws", server)


@pytest.fixture
def dev_cfg(tmp_path: Path, dev_server: FakeSpotify) -> Workspace:
    return make_cfg(tmp_path / "ws-dev", dev_server)


@pytest.fixture
def logged_in(cfg: Workspace) -> str:
    """A listener logged in through the real PKCE flow (auto-approve) against the fake accounts service."""
    pull.login(cfg, "listener-0001", method="auto")
    return "listener-0001"
