"""Fault injection on `tunelake pull` against the fake Spotify server: killed at every write point (os._exit, as
kill -9 does), then run again, a pull ends with exactly the lake of an uninterrupted pull — no play counted twice,
none lost, the cursor never ahead of the data it covers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests_crash_common import lake_state, run_driver

from tunelake.curate import pull
from tunelake.lake import manifest
from tunelake.lake.store import Lake
from tunelake.pipeline.doctor import diagnose
from tunelake.synthetic.server import FakeSpotify
from tunelake.synthetic.world import generate_world
from tunelake.workspace import open_workspace

HANDLE = "listener-0001"
WHAT = "recent,top,saved"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    world = tmp_path_factory.mktemp("pull-world")
    generate_world(world, users=2, days=6, seed=5)
    with FakeSpotify(world) as srv:
        yield srv


def _settings(srv: FakeSpotify) -> dict[str, str]:
    return {"TUNELAKE_SPOTIFY_API_URL": srv.api_url, "TUNELAKE_SPOTIFY_ACCOUNTS_URL": srv.accounts_url,
            "TUNELAKE_SPOTIFY_CLIENT_ID": "tunelake-test"}


def test_a_pull_killed_at_any_write_point_then_run_again_is_exact(server, tmp_path: Path, monkeypatch):
    env = _settings(server)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    base = tmp_path / "base"
    pull.login(open_workspace(base), HANDLE, method="auto")
    args = ["pull", "--user", HANDLE, "--what", WHAT]
    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    count = tmp_path / "count"
    done = run_driver(clean, args, CRASH_COUNT_FILE=str(count), **env)
    assert done.returncode == 0, done.stderr
    expected = lake_state(clean)
    plays = expected["curated"]["plays"]
    assert plays and len(plays) > 50  # more than one recently-played page
    cursor = manifest.get_cursor(Lake(str(clean / "lake")), pull.recent_cursor_name(HANDLE))
    points = int(count.read_text())
    assert points > 40
    # ~30 points spread over the whole pull (each costs two pulls against the server): every page's commit and
    # every snapshot's, with points before, inside and after each commit.
    step = max(1, points // 30)
    for k in [*range(1, points + 1, step), points]:
        ws = tmp_path / f"k{k}"
        shutil.copytree(base, ws)
        crashed = run_driver(ws, args, CRASH_AT=str(k), **env)
        assert crashed.returncode == 137, (k, crashed.stderr[-400:])
        assert {f.check: f.status for f in diagnose(open_workspace(ws))}["reconciliation"] == "ok", k
        again = run_driver(ws, args, **env)
        assert again.returncode == 0, (k, again.stderr[-400:])
        state = lake_state(ws)
        for key in ("curated", "hidden", "users"):
            assert state[key] == expected[key], (k, key)
        # the same pages, each counted once: every committed page's counts add up to the same totals
        assert _totals(state["batches"]) == _totals(expected["batches"]), k
        assert manifest.get_cursor(Lake(str(ws / "lake")), pull.recent_cursor_name(HANDLE)) == cursor, k
        shutil.rmtree(ws)


def _totals(batches: list[tuple]) -> tuple[int, int, int, int]:
    """read, accepted, duplicates and merged summed over the batches (a page fetched again after a crash can
    differ from the uninterrupted pull's page in where it starts, never in what it adds)."""
    return tuple(sum(b[i] for b in batches) for i in (4, 5, 6, 7))
