"""Issue 2 benchmark: generate rate and import rate on a 1M-play world, against a pandas read_json → Parquet
baseline timed in the same run. Each phase runs in its own process so its peak RSS is its own, and each starts with
the world's files in the page cache (read once, untimed), as right after an export was downloaded and unzipped;
bench_scale's 10M import reads them from disk."""

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
    gen_dir = WORK / f"gen-{scale}"
    gen = in_child(GENERATE, str(gen_dir), str(p["users"]), str(p["days"]))
    shutil.rmtree(gen_dir, ignore_errors=True)
    w = world(scale)
    ws = WORK / f"import-ws-{scale}"
    shutil.rmtree(ws, ignore_errors=True)
    warm_page_cache(w / "exports")
    imp = in_child(IMPORT, str(w), str(ws))  # one process per core (import_many)
    shutil.rmtree(ws, ignore_errors=True)
    os.environ["BENCH_IMPORT_WORKERS"] = "1"  # the same, one listener after another
    try:
        warm_page_cache(w / "exports")
        one = in_child(IMPORT, str(w), str(ws))
    finally:
        del os.environ["BENCH_IMPORT_WORKERS"]
    pdo = WORK / f"pandas-{scale}"
    shutil.rmtree(pdo, ignore_errors=True)
    warm_page_cache(w / "exports")
    base = in_child(PANDAS, str(w), str(pdo))
    shutil.rmtree(pdo, ignore_errors=True)
    shutil.rmtree(ws, ignore_errors=True)
    out = {
        "scale": scale,
        "generate": {**gen, "plays_per_s": round(gen["plays"] / gen["wall_s"])},
        "import": {**imp, "plays_per_s": round(imp["plays"] / imp["wall_s"])},
        "import_one_process": {**one, "plays_per_s": round(one["plays"] / one["wall_s"])},
        "pandas_baseline": {**base, "plays_per_s": round(base["plays"] / base["wall_s"])},
    }
    out["import_vs_pandas"] = round(out["import"]["plays_per_s"] / out["pandas_baseline"]["plays_per_s"], 2)
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
