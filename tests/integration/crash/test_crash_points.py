"""Fault injection: a writer killed at every write point, or out of disk space at one, never poisons a workspace.

The import under test adds a listener's account data, library and playlists beside their extended history already
in the lake (so the merge with stored rows runs) in a workspace that holds another listener. For every write point
k of that import, a fresh copy of the workspace runs the import in a subprocess that dies at point k (os._exit, as
kill -9 does); then the same import runs again, normally. The lake must then be exactly the lake of a clean import
— curated rows, manifest entries with their counts, quarantine, raw files — with no hidden leftovers, and the
build's quality gates all green (built for a sample of the points: the build is a function of the lake, which is
compared at every point).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests_crash_common import lake_state, run_driver

from tunelake.curate.ingest import import_paths
from tunelake.pipeline.doctor import diagnose
from tunelake.synthetic.world import generate_world
from tunelake.workspace import open_workspace

HANDLE = "listener-0001"


def gates_green(ws: Path) -> tuple[int, int]:
    from tunelake.pipeline import build

    info = build(open_workspace(ws), force=True)
    failed = [g for g in info.quality if not g.passed]
    assert not failed, [g.describe() for g in failed]
    return len(info.quality), info.rows["fact_play"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("crash")
    world = root / "world"
    generate_world(world, users=2, days=10, seed=3)
    base = root / "base"
    cfg = open_workspace(base)
    import_paths(cfg, [str(world / "exports" / "listener-0002")], "listener-0002")
    import_paths(cfg, [str(world / "exports" / HANDLE / "Spotify Extended Streaming History")], HANDLE)
    args = ["import", str(world / "exports" / HANDLE), "--user", HANDLE]
    clean = root / "clean"
    shutil.copytree(base, clean)
    count_file = root / "count"
    done = run_driver(clean, args, CRASH_COUNT_FILE=str(count_file))
    assert done.returncode == 0, done.stderr
    points = int(count_file.read_text())
    return {"root": root, "base": base, "args": args, "clean": lake_state(clean), "points": points,
            "clean_gates": gates_green(clean)}


def test_the_import_has_write_points_to_crash_at(scenario):
    # raw + envelope + quarantine/curated/manifest files, each written, renamed, committed: dozens of points
    assert scenario["points"] > 40
    assert scenario["clean"]["hidden"] == []
    # before: listener-0002 (4 files) and listener-0001's extended history; new: account ×2, library, playlist
    assert len(scenario["clean"]["batches"]) == 9


def test_a_crash_at_any_write_point_then_a_rerun_is_exactly_a_clean_import(scenario):
    root, base, args, clean = scenario["root"], scenario["base"], scenario["args"], scenario["clean"]
    n = scenario["points"]
    sample = set(range(1, n + 1, 9)) | {n - 2, n}
    base_state = lake_state(base)
    died = committed = 0
    for k in range(1, n + 1):
        ws = root / f"k{k}"
        shutil.copytree(base, ws)
        crashed = run_driver(ws, args, CRASH_AT=str(k))
        assert crashed.returncode == 137, (k, crashed.stderr[-500:])
        died += 1
        # The next holder of the lock (here `tunelake doctor`) finishes or undoes the stopped import: the lake then
        # holds all of it or none of it, and nothing hidden.
        findings = {f.check: f for f in diagnose(open_workspace(ws))}
        assert findings["lock"].status == "repaired", k
        assert findings["reconciliation"].status == "ok", (k, findings["reconciliation"].detail)
        recovered = lake_state(ws)
        assert recovered["batches"] in (clean["batches"], base_state["batches"]), k
        assert recovered["hidden"] == [], k
        committed += recovered["batches"] == clean["batches"]
        again = import_paths(open_workspace(ws), [a for a in args[1:2]], HANDLE)
        assert not again.errors, (k, again.errors)
        state = lake_state(ws)
        for key in ("curated", "batches", "quarantine", "users", "files", "hidden"):
            assert state[key] == clean[key], (k, key)
        if k in sample:
            assert gates_green(ws) == scenario["clean_gates"], k
        shutil.rmtree(ws)
    assert died == n
    assert 0 < committed < n  # some crashes came after the commit point (rolled forward), most before it


def test_a_full_disk_at_any_write_point_names_the_path_and_the_retry_is_exact(scenario):
    """Out of space at a write point: one line naming the file, exit 4, nothing of the import visible; after
    "freeing space" (the next run has room) the retry is exact."""
    root, base, args, clean = scenario["root"], scenario["base"], scenario["args"], scenario["clean"]
    base_batches = lake_state(base)["batches"]
    for k in (1, 5, 17, 30, scenario["points"] // 2, scenario["points"] - 40):
        ws = root / f"enospc{k}"
        shutil.copytree(base, ws)
        failed = run_driver(ws, args, CRASH_ENOSPC=str(k))
        err = failed.stderr.strip().splitlines()
        assert failed.returncode == 4, (k, failed.stderr)
        assert len(err) == 1 and "No space left on device" in err[0] and str(ws / "lake") in err[0], err
        assert "Traceback" not in failed.stderr
        assert lake_state(ws)["batches"] == base_batches
        assert lake_state(ws)["hidden"] == []  # the failed transaction removed what it had staged
        import_paths(open_workspace(ws), [args[1]], HANDLE)
        state = lake_state(ws)
        for key in ("curated", "batches", "quarantine", "users", "files", "hidden"):
            assert state[key] == clean[key], (k, key)
        shutil.rmtree(ws)
