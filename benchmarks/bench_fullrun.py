"""Issue 8 targets, end to end on DuckDB: import every listener (one process per core) → catalogue → `tunelake run`
(build, quality gates, features, segments, recommendations) at 10M plays by default (BENCH_SCALE picks others),
with `duckdb_memory_limit` 3 GB (6 GB at 100M). Peak RSS is the largest process of the run. Writes
benchmarks/results/fullrun.json."""

from __future__ import annotations

import sys

from benchmarks.common import SCALES, in_child, save, scales, world_in_child

TARGETS = {"10m": (300, 4096), "100m": (3600, 8192)}

RUN = """
import shutil
from pathlib import Path
from tunelake.config import load_config
from tunelake.ingest import import_many, open_lake
from tunelake.pipeline import run_pipeline
from tunelake.sources.catalog import import_catalog
w, ws = Path(sys.argv[1]), Path(sys.argv[2])
shutil.rmtree(ws, ignore_errors=True)
cfg = load_config(ws, {"duckdb_memory_limit": sys.argv[3]})
jobs = [(d.name, [str(d)]) for d in sorted((w / "exports").iterdir()) if d.is_dir()]
summaries = import_many(cfg, jobs)
t1 = time.perf_counter()
plays = sum(s.total("read") for s in summaries)
import_catalog(open_lake(cfg), w / "catalog")
t2 = time.perf_counter()
run = run_pipeline(cfg, report=False)
t3 = time.perf_counter()
steps = {s.step: s.status for s in run.steps}
result = {"plays": plays, "import_s": round(t1 - _t0, 1), "import_plays_per_s": round(plays / (t1 - _t0)),
          "catalog_s": round(t2 - t1, 1), "pipeline_s": round(t3 - t2, 1), "full_run_s": round(t3 - _t0, 1),
          "steps": steps, "duckdb_memory_limit": sys.argv[3]}
shutil.rmtree(ws, ignore_errors=True)
"""


def main() -> None:
    from benchmarks.common import WORK

    wanted = [s for s in scales() if s in ("10m", "100m")] or ["10m"]
    out = {}
    for scale in wanted:
        world_in_child(scale)
        mem = "6GB" if scale == "100m" else "3GB"
        res = in_child(RUN, str(WORK / f"world-{scale}"), str(WORK / f"fullrun-ws-{scale}"), mem)
        peak = max(res["peak_rss_mb"], res["peak_rss_largest_child_mb"])
        secs, rss = TARGETS[scale]
        out[scale] = {**res, "users": SCALES[scale]["users"], "peak_rss_any_process_mb": peak,
                      "targets": {f"full run < {secs} s": res["full_run_s"] < secs,
                                  f"peak RSS < {rss} MB": peak < rss}}
    print(save("fullrun", {"results": out}), file=sys.stderr)


if __name__ == "__main__":
    main()
