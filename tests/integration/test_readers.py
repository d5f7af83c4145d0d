"""Readers never block the builder: a reader process holds a query open on the current warehouse during a full
rebuild; the build completes, the reader keeps a consistent view of the old build, and new readers see either
the complete old build or the complete new one (never a half-built table)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunelake.curate.catalog import import_catalog
from tunelake.curate.ingest import import_paths
from tunelake.pipeline import build
from tunelake.synthetic.world import generate_world
from tunelake.warehouse.store import open_warehouse, read_pointer
from tunelake.workspace import Workspace, open_workspace

READER = r"""
import json, os, sys, time
from tunelake.workspace import open_workspace
from tunelake.warehouse.store import open_warehouse, read_pointer

cfg = open_workspace(sys.argv[1])
out, stop = open(sys.argv[2], "w"), sys.argv[3]

def snapshot(con):
    return list(con.execute(
        "SELECT (SELECT count(*) FROM fact_play), (SELECT coalesce(sum(plays), 0) FROM agg_user_day), "
        "(SELECT count(*) FROM dim_user), (SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'fact_%' "
        "OR table_name LIKE 'dim_%' OR table_name LIKE 'agg_%')").fetchone())

held = open_warehouse(cfg)              # opened before the build, kept open through it
held_file = read_pointer(cfg)["file"]
stream = held.cursor()
result = stream.execute("SELECT play_id FROM fact_play ORDER BY play_id")  # a query left open, read slowly
streamed = 0
out.write(json.dumps({"ready": True, "file": held_file}) + "\n"); out.flush()
while not os.path.exists(stop):
    t0 = time.time()
    streamed += len(result.fetchmany(5))
    h = snapshot(held)
    fresh = open_warehouse(cfg)         # a new reader: follows the pointer at this instant
    f = snapshot(fresh)
    fresh_file = fresh.execute("SELECT path FROM duckdb_databases() WHERE database_name NOT IN "
                               "('system', 'temp')").fetchone()[0]
    fresh.close()
    out.write(json.dumps({"t0": t0, "t1": time.time(), "held": h, "fresh": f,
                          "fresh_file": os.path.basename(fresh_file)}) + "\n"); out.flush()
streamed += len(result.fetchall())
out.write(json.dumps({"streamed": streamed, "held_final": snapshot(held)}) + "\n"); out.flush()
held.close()
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path, str]:
    world = tmp_path_factory.mktemp("readers-world")
    generate_world(world, users=5, days=45, seed=21, account_data=False)
    cfg = open_workspace(tmp_path_factory.mktemp("readers-ws"))
    handles = sorted(p.name for p in (world / "exports").iterdir())
    for h in handles[:-1]:
        import_paths(cfg, [str(world / "exports" / h)], h)
    import_catalog(cfg, world / "catalog")
    build(cfg)
    return cfg, world, handles[-1]


def test_reader_holds_query_open_during_full_rebuild(workspace: tuple[Workspace, Path, str], tmp_path: Path) -> None:
    cfg, world, last = workspace
    old_file = read_pointer(cfg)["file"]
    con = open_warehouse(cfg)
    old = list(con.execute(
        "SELECT (SELECT count(*) FROM fact_play), (SELECT sum(plays) FROM agg_user_day), "
        "(SELECT count(*) FROM dim_user)").fetchone())
    con.close()

    log, stop = tmp_path / "reader.jsonl", tmp_path / "stop"
    proc = subprocess.Popen([sys.executable, "-c", READER, str(cfg.root), str(log), str(stop)])
    try:
        for _ in range(600):  # wait until the reader holds its connection and open query
            if log.exists() and log.read_text().strip():
                break
            time.sleep(0.05)
        assert json.loads(log.read_text().splitlines()[0]) == {"ready": True, "file": old_file}
        import_paths(cfg, [str(world / "exports" / last)], last)  # new data: the next build is a full rebuild
        t_start = time.time()
        info = build(cfg)
        t_end = time.time()
        assert not info.skipped and info.file != old_file
        for _ in range(600):  # let the reader observe the switched pointer too
            if json.loads(log.read_text().splitlines()[-1]).get("fresh_file") == info.file:
                break
            time.sleep(0.05)
    finally:
        stop.touch()
        proc.wait(timeout=60)
    assert proc.returncode == 0

    lines = [json.loads(x) for x in log.read_text().splitlines()]
    obs = [x for x in lines if "held" in x]
    final = lines[-1]
    n_tables = obs[0]["held"][3]
    # The held connection saw the old build, whole and unchanged, before, during and after the rebuild.
    assert all(o["held"] == [*old, n_tables] for o in obs)
    assert final["held_final"] == [*old, n_tables] and final["streamed"] == old[0]
    # The reader kept working while the build ran (it was never blocked by the builder, nor blocked it).
    during = [o for o in obs if o["t0"] >= t_start and o["t1"] <= t_end]
    assert during, "no reader query ran inside the build window"
    # New readers see the complete old build or the complete new one, matching the file they opened.
    con = open_warehouse(cfg)
    new = list(con.execute(
        "SELECT (SELECT count(*) FROM fact_play), (SELECT sum(plays) FROM agg_user_day), "
        "(SELECT count(*) FROM dim_user)").fetchone())
    con.close()
    assert new[2] == old[2] + 1 and new[0] > old[0]
    expected = {old_file: [*old, n_tables], info.file: [*new, n_tables]}
    assert {o["fresh_file"] for o in obs} == {old_file, info.file}
    for o in obs:
        assert o["fresh"] == expected[o["fresh_file"]], o
    # Switch is monotonic: once a new reader saw the new build, no later reader saw the old one.
    files = [o["fresh_file"] for o in obs]
    assert files == sorted(files, key=lambda f: f == info.file)
    # The file the reader held is kept (as the previous build) until a later build replaces it.
    assert (cfg.warehouse_dir / old_file).exists() and read_pointer(cfg)["file"] == info.file
