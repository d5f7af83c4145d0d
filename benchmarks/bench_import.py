"""Issue 2 benchmark: generate rate and import rate on a 1M-play world, against a pandas read_json → Parquet
baseline timed in the same run. Each phase runs in its own process so its peak RSS is its own, and each starts with
the world's files in the page cache (read once, untimed), as right after an export was downloaded and unzipped;
bench_scale's 10M import reads them from disk. The three timed phases take turns BENCH_IMPORT_RUNS times (3); the
figures are the median run's, with every run's rate beside them.

Every run writes to a folder of its own and all of them are deleted at the end, none between runs: this machine's
root is ext4 without a journal, which skips inodes freed in the last minute when it allocates new ones, so deleting
the previous run's ~1,500 files right before a run made creating files in it cost 2-5 % of the import's CPU — a
cost of the harness, which a first import into a new workspace does not pay. For the same reason each run starts
after a `sync`, so that no run is timed while the one before it is written back."""

from __future__ import annotations

import os
import shutil
import sys

from benchmarks.common import IMPORT_ALL, WORK, in_child, save, scales, warm_page_cache, world

GENERATE = """
import shutil
from tunelake.synthetic.world import generate_world
out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
s = generate_world(out, users=int(sys.argv[2]), days=int(sys.argv[3]), seed=1, account_data=False)
result = {"plays": s.track_plays + s.episode_plays + s.video_plays, "bytes": s.bytes_written}
"""

IMPORT = IMPORT_ALL  # shared with bench_scale
REPEAT = int(os.environ.get("BENCH_IMPORT_RUNS") or 3)  # this machine's timings vary ±7 % from run to run


def _median(results: list[dict]) -> dict:
    """The run with the median wall time (its own memory figures with it)."""
    return sorted(results, key=lambda r: r["wall_s"])[len(results) // 2]

PANDAS = """
from pathlib import Path
import pandas as pd
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
n = 0
for i, f in enumerate(sorted(Path(sys.argv[1]).glob("exports/*/*/*.json"))):
    df = pd.read_json(f)
    n += len(df)
    df.to_parquet(out / f"{i}.parquet")
result = {"plays": n}
"""


def run(scale: str) -> dict:
    from benchmarks.common import SCALES

    p = SCALES[scale]
    outputs = WORK / f"import-runs-{scale}"
    shutil.rmtree(outputs, ignore_errors=True)  # a crashed run's leftovers, before anything is timed
    outputs.mkdir(parents=True)
    gen = in_child(GENERATE, str(outputs / "generated"), str(p["users"]), str(p["days"]))
    w = world(scale)
    runs: dict[str, list[dict]] = {"import": [], "import_one_process": [], "pandas_baseline": []}
    try:
        for i in range(REPEAT):  # the phases take turns, so a slow spell of the machine hits all of them alike
            for name, code, workers in (("import", IMPORT, None), ("import_one_process", IMPORT, "1"),
                                        ("pandas_baseline", PANDAS, None)):
                os.sync()  # the runs before are on disk: no writeback of theirs while this one is timed
                warm_page_cache(w / "exports")
                if workers:
                    os.environ["BENCH_IMPORT_WORKERS"] = workers  # the same, one listener after another
                try:
                    runs[name].append(in_child(code, str(w), str(outputs / f"{name}-{i}")))
                finally:
                    os.environ.pop("BENCH_IMPORT_WORKERS", None)
    finally:
        shutil.rmtree(outputs, ignore_errors=True)
    imp, one, base = (_median(runs[k]) for k in ("import", "import_one_process", "pandas_baseline"))
    out = {
        "scale": scale,
        "generate": {**gen, "plays_per_s": round(gen["plays"] / gen["wall_s"])},
        "import": {**imp, "plays_per_s": round(imp["plays"] / imp["wall_s"])},
        "import_one_process": {**one, "plays_per_s": round(one["plays"] / one["wall_s"])},
        "pandas_baseline": {**base, "plays_per_s": round(base["plays"] / base["wall_s"])},
    }
    out["import_vs_pandas"] = round(out["import"]["plays_per_s"] / out["pandas_baseline"]["plays_per_s"], 2)
    out["runs"] = REPEAT
    out["plays_per_s_of_every_run"] = {k: [round(r["plays"] / r["wall_s"]) for r in v] for k, v in runs.items()}
    out["import_vs_pandas_of_every_run"] = [round((i["plays"] / i["wall_s"]) / (b["plays"] / b["wall_s"]), 2)
                                            for i, b in zip(runs["import"], runs["pandas_baseline"], strict=True)]
    out["targets"] = {"import_plays_per_s >= 150000": out["import"]["plays_per_s"] >= 150_000,
                      "import >= 2x pandas": out["import_vs_pandas"] >= 2,
                      "import peak RSS < 1.5 GB (parent + workers)": out["import"]["peak_rss_mb"]
                      + (out["import"]["spawned_workers"] * out["import"]["peak_rss_largest_child_mb"]) < 1536}
    out["page_cache"] = "warm: every file read once, untimed, before each timed phase"
    return out


def main() -> None:
    wanted = [s for s in scales() if s == "1m"] or ["1m"]
    results = {s: run(s) for s in wanted}
    path = save("import", {"results": results})
    print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
