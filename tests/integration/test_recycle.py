"""An incremental build starts from the file before the current one (renamed, updated in place) instead of a copy
of the current one, unless a reader holds that file: then it copies. Either way every table ends equal to a full
rebuild's, a reader of the older file keeps an unchanged view, and a build that fails leaves the current file."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from tests.integration.test_incremental import assert_same_as_full_rebuild

from tunelake.curate.ingest import import_paths
from tunelake.lake import manifest, zones
from tunelake.pipeline import build
from tunelake.pipeline.runlog import read_run_logs
from tunelake.synthetic.world import generate_world
from tunelake.warehouse.store import read_pointer
from tunelake.workspace import Workspace, open_workspace

HOLDER = r"""
import json, os, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
count = lambda: con.execute("SELECT count(*), count(DISTINCT user_key) FROM fact_play").fetchone()
print(json.dumps(count()), flush=True)
sys.stdin.readline()  # held open until the test has built
print(json.dumps(count()), flush=True)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recycle-world")
    generate_world(out, users=8, days=30, seed=31, account_data=False)
    return out


def _handles(world: Path) -> list[str]:
    return sorted(p.name for p in (world / "exports").iterdir())


def _add(ws: Workspace, world: Path, handle: str) -> dict:
    import_paths(ws, [str(world / "exports" / handle)], handle)
    before = read_pointer(ws)
    build(ws)
    step = next(s for s in read_run_logs(ws.lake)[-1]["steps"] if s["step"] == "build")
    return {"before": before, "rows_in": step["rows_in"], **step["details"]}


def _curated_plays(ws: Workspace, *handles: str) -> int:
    files = [ws.lake.read_uri(zones.curated_user_file("plays", manifest.user_key_for(h))) for h in handles]
    return duckdb.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone()[0]


def _three_built(world: Path, tmp_path: Path) -> tuple[Workspace, list[str]]:
    """A workspace with the first three listeners imported and built once: one warehouse file, none before it."""
    ws = open_workspace(tmp_path / "ws")
    h = _handles(world)
    for handle in h[:3]:
        import_paths(ws, [str(world / "exports" / handle)], handle)
    build(ws)
    return ws, h


def _files(ws: Workspace) -> set[str]:
    return {p.name for p in ws.warehouse_dir.glob("wh-*.duckdb")}


def test_builds_alternate_between_two_files_and_equal_full_rebuilds(world: Path, tmp_path: Path) -> None:
    ws, h = _three_built(world, tmp_path)
    first = read_pointer(ws)["file"]
    # No file before the current one yet: a copy of the current one.
    d = _add(ws, world, h[3])
    assert (d["mode"], d["started_from"], d["listeners_rebuilt"]) == ("incremental", f"a copy of {first}", 1)
    assert d["rows_in"] == _curated_plays(ws, h[3])  # what it read: the rebuilt listener's curated plays
    second = read_pointer(ws)["file"]
    # Now the first file is recycled: the listeners changed since it (this build's and the last one's) rebuilt.
    d = _add(ws, world, h[4])
    assert d["started_from"].startswith(f"{first} (the file before the current one")
    assert d["listeners_rebuilt"] == 2 and d["why"] == "2 of 5 listeners changed"
    assert d["rows_in"] == _curated_plays(ws, h[3], h[4])
    third = read_pointer(ws)
    assert third["previous"] == second and _files(ws) == {second, third["file"]}  # the first is renamed, not kept
    assert_same_as_full_rebuild(ws, tmp_path)
    d = _add(ws, world, h[5])
    assert d["started_from"].startswith(second) and d["listeners_rebuilt"] == 2
    assert _files(ws) == {third["file"], read_pointer(ws)["file"]}
    assert_same_as_full_rebuild(ws, tmp_path)


def test_a_reader_of_the_older_file_makes_the_build_copy(world: Path, tmp_path: Path) -> None:
    """Held in another process (DuckDB's lock refuses the read-write open) or in this one (seen among this
    process's open files): the build copies the current file and the reader's file is left as it was."""
    ws, h = _three_built(world, tmp_path)
    _add(ws, world, h[3])
    older = ws.warehouse_dir / read_pointer(ws)["previous"]
    current = read_pointer(ws)["file"]

    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(older)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        seen = json.loads(proc.stdout.readline())
        d = _add(ws, world, h[4])
        proc.stdin.write("\n")
        proc.stdin.flush()
        after = json.loads(proc.stdout.readline())
    finally:
        proc.communicate(timeout=60)
    assert (d["started_from"], d["listeners_rebuilt"]) == (f"a copy of {current}", 1)
    assert seen == after == [seen[0], 3]  # the older file still holds the first three listeners only
    assert_same_as_full_rebuild(ws, tmp_path)

    older = ws.warehouse_dir / read_pointer(ws)["previous"]
    current = read_pointer(ws)["file"]
    con = duckdb.connect(str(older), read_only=True)
    try:
        rows = con.execute("SELECT count(*) FROM fact_play").fetchone()[0]
        d = _add(ws, world, h[5])
        assert con.execute("SELECT count(*) FROM fact_play").fetchone()[0] == rows
    finally:
        con.close()
    assert (d["started_from"], d["listeners_rebuilt"]) == (f"a copy of {current}", 1)
    assert_same_as_full_rebuild(ws, tmp_path)


def test_a_failed_build_in_the_recycled_file_leaves_the_current_one(world: Path, tmp_path: Path) -> None:
    """The build fails half-way (a curated file of the new listener is unreadable): the pointer and the current
    file are as before; the recycled file is gone (nothing names it), and the next build copies the current one."""
    ws, h = _three_built(world, tmp_path)
    _add(ws, world, h[3])
    pointer = read_pointer(ws)
    current = ws.warehouse_dir / pointer["file"]
    stamp = current.stat().st_mtime_ns
    import_paths(ws, [str(world / "exports" / h[4])], h[4])
    plays = Path(ws.lake.read_uri(zones.curated_user_file("plays", manifest.user_key_for(h[4]))))
    good = plays.read_bytes()
    plays.write_bytes(b"not parquet")
    with pytest.raises(Exception, match="plays"):
        build(ws)
    assert read_pointer(ws) == pointer and current.stat().st_mtime_ns == stamp
    assert _files(ws) == {pointer["file"]}  # the older file was taken for the build, and dropped with it
    time.sleep(0.01)
    plays.write_bytes(good)
    build(ws)
    details = next(s for s in read_run_logs(ws.lake)[-1]["steps"] if s["step"] == "build")["details"]
    assert details["started_from"] == f"a copy of {pointer['file']}"
    assert_same_as_full_rebuild(ws, tmp_path)
