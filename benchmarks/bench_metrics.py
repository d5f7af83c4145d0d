"""Issue 16 target 2: the dashboard's typical questions through the metric layer on a big warehouse, p95.

    python -m benchmarks.bench_metrics                     # the bench_incremental workspace (10.4M plays)
    BENCH_WS=benchmarks/work/fullrun-ws-100m python -m benchmarks.bench_metrics

For each workspace in BENCH_WS (comma list; default the workspace `bench_incremental` leaves, so `make bench` runs
this after it): when it has no warehouse yet (an imported lake, e.g. the 100M one `bench_fullrun` imports), first
`tunelake build` in a child process (build → quality gates → commit, no analytics; its seconds and peak RSS are
recorded, with BENCH_DUCKDB_MEMORY_LIMIT, default 4GB; BENCH_CATALOG: a catalogue folder imported first, untimed
by the steps); then the ten questions of `bench_scale` (one cold call, then
p50/p95 over BENCH_QUERY_RUNS ≥ 20 warm runs) on a read-only connection, as the dashboard opens it. Results by play
count in benchmarks/results/metrics.json, merged with earlier runs at other sizes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench_scale import DASHBOARD
from benchmarks.common import RESULTS, WORK, dir_mb, in_child, save

TARGETS_MS = {"10m": 100.0, "100m": 250.0}  # worst p95 (issue 16)

BUILD = """
from tunelake.workspace import open_workspace
from datetime import datetime
from pathlib import Path
from tunelake.pipeline import build
from tunelake.pipeline.runlog import read_run_logs
ws = open_workspace(sys.argv[1], {"duckdb_memory_limit": sys.argv[2]})
if sys.argv[3]:
    from tunelake.curate.catalog import import_catalog
    import_catalog(ws, Path(sys.argv[3]))
build(ws)
seconds = lambda s: (datetime.fromisoformat(s["ended_at"]) - datetime.fromisoformat(s["started_at"])).total_seconds()
result = {"steps": {s["step"]: {"seconds": round(seconds(s), 1), "status": s["status"]}
                    for s in read_run_logs(ws.lake, last=1)[0]["steps"]}}
"""

COUNT = """
from tunelake.workspace import open_workspace
from tunelake.warehouse.store import open_warehouse
with open_warehouse(open_workspace(sys.argv[1])) as con:
    result = {"plays": con.execute("SELECT count(*) FROM fact_play").fetchone()[0],
              "listeners": con.execute("SELECT count(*) FROM dim_user").fetchone()[0],
              "rollups": con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'rollup'").fetchone()[0]}
"""


def scale_of(plays: int) -> str:
    return "100m" if plays >= 50_000_000 else "10m" if plays >= 5_000_000 else f"{plays / 1e6:.1f}m"


def measure(ws: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"workspace": str(ws)}
    if not (ws / "warehouse" / "CURRENT.json").exists():
        mem = os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT", "4GB")
        print(f"[metrics] {ws}: no warehouse yet, building it (duckdb_memory_limit {mem})", file=sys.stderr)
        catalog = os.environ.get("BENCH_CATALOG", "")
        out["build"] = in_child(BUILD, str(ws), mem, catalog, timeout=4 * 3600) | {
            "duckdb_memory_limit": mem, "catalog_imported_first": catalog or None}
        out["warehouse_mb"] = dir_mb(ws / "warehouse")
    out |= in_child(COUNT, str(ws))
    runs = max(20, int(os.environ.get("BENCH_QUERY_RUNS", "25")))
    print(f"[metrics] {ws}: {out['plays']:,} plays, {runs} runs per question", file=sys.stderr)
    out["dashboard"] = in_child(DASHBOARD, str(ws), str(runs), timeout=3600)
    target = TARGETS_MS.get(scale_of(out["plays"]))
    if target:
        out["target"] = {f"worst p95 < {target:.0f} ms": out["dashboard"]["worst_p95_ms"] < target}
    return out


def main() -> None:
    wanted = os.environ.get("BENCH_WS", str(WORK / "incremental-10m" / "ws"))
    results: dict[str, Any] = {}
    for w in (Path(p.strip()) for p in wanted.split(",") if p.strip()):
        if not w.exists():
            sys.exit(f"no workspace at {w}: run `python -m benchmarks.bench_incremental` first (or set BENCH_WS)")
        r = measure(w)
        results[scale_of(r["plays"])] = r
    previous = RESULTS / "metrics.json"
    if previous.exists():
        results = {**json.loads(previous.read_text()).get("results", {}), **results}
    print(save("metrics", {"results": results, "method": "benchmarks/bench_scale.py DASHBOARD: the metric layer's "
                           "functions on a read-only connection; one cold call, then p50/p95 of warm runs"}),
          file=sys.stderr)


if __name__ == "__main__":
    main()
