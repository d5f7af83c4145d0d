"""Issue 16, target 1: one listener's big export — 300k plays in 3 extended-history files — imported by
`tunelake import`, against pandas `read_json` → Parquet and a bare DuckDB `read_json` → Parquet of the same files,
timed in the same run.

The listener is the hard world's heaviest of its first 300 (index 83: activity ×9.9 over ~8 years); the benchmark
generates it once, keeps its last 300,000 plays in time order and writes them as Spotify does (a JSON array per
file, 100,000 records each). Each phase runs in its own process with the files in the page cache (read once,
untimed); the phases take turns BENCH_LISTENER_RUNS times (5) and the median run's figures are reported, every
run's beside them. The ratios are of the work after each process has imported its modules (`work_s`); the
wall time with process start and imports is reported beside them.

Writes benchmarks/results/listener.json."""

from __future__ import annotations

import os
import shutil
import sys

from benchmarks.common import WORK, in_child, save, warm_page_cache

PLAYS, FILES = 300_000, 3
REPEAT = int(os.environ.get("BENCH_LISTENER_RUNS") or 5)

GENERATE = """
import shutil
from pathlib import Path
import orjson
from tunelake.synthetic.world import generate_world
out = Path(sys.argv[1]); plays, files = int(sys.argv[2]), int(sys.argv[3])
scratch = out.parent / (out.name + "-world")
shutil.rmtree(scratch, ignore_errors=True)
generate_world(scratch, users=300, days=3650, seed=1, account_data=False, only=range(83, 84), world="hard")
records = []
for f in sorted(scratch.glob("exports/*/*/Streaming_History_Audio_*.json")):
    records += orjson.loads(f.read_bytes())
records.sort(key=lambda r: r["ts"])
records = records[-plays:]
folder = out / "Spotify Extended Streaming History"
folder.mkdir(parents=True, exist_ok=True)
size = len(records) // files
for i in range(files):
    part = records[i * size:(i + 1) * size if i < files - 1 else None]
    name = f"Streaming_History_Audio_{part[0]['ts'][:4]}-{part[-1]['ts'][:4]}_{i}.json"
    (folder / name).write_bytes(orjson.dumps(part, option=orjson.OPT_INDENT_2))
shutil.rmtree(scratch)
result = {"plays": len(records), "files": files,
          "bytes": sum(p.stat().st_size for p in folder.iterdir()),
          "first_ts": records[0]["ts"], "last_ts": records[-1]["ts"]}
"""

TUNELAKE = """
from tunelake.workspace import open_workspace
from tunelake.curate.ingest import import_paths
_w = time.perf_counter()
ws = open_workspace(sys.argv[2])
s = import_paths(ws, [sys.argv[1]], "heavy")
result = {"plays": s.total("read"), "accepted": s.total("accepted"), "duplicates": s.total("duplicates"),
          "quarantined": sum(f.quarantined_total for f in s.files), "work_s": round(time.perf_counter() - _w, 3)}
"""

PANDAS = """
from pathlib import Path
import pandas as pd
_w = time.perf_counter()
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
n = 0
for i, f in enumerate(sorted(Path(sys.argv[1]).glob("*/*.json"))):
    df = pd.read_json(f)
    n += len(df)
    df.to_parquet(out / f"{i}.parquet")
result = {"plays": n, "work_s": round(time.perf_counter() - _w, 3)}
"""

DUCKDB = """
from pathlib import Path
import duckdb
_w = time.perf_counter()
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
files = [str(f) for f in sorted(Path(sys.argv[1]).glob("*/*.json"))]
con = duckdb.connect()
con.execute(f"COPY (SELECT * FROM read_json({files!r})) TO '{out / 'plays.parquet'}'")
work_s = round(time.perf_counter() - _w, 3)
result = {"plays": con.execute(f"SELECT count(*) FROM '{out / 'plays.parquet'}'").fetchone()[0], "work_s": work_s}
"""


def _median(results: list[dict]) -> dict:
    return sorted(results, key=lambda r: r["work_s"])[len(results) // 2]


def main() -> None:
    export = WORK / f"listener-{PLAYS // 1000}k"
    if not (export / "generated.json").exists():
        shutil.rmtree(export, ignore_errors=True)
        gen = in_child(GENERATE, str(export), str(PLAYS), str(FILES))
        (export / "generated.json").write_text(__import__("json").dumps(gen))
    gen = __import__("json").loads((export / "generated.json").read_text())
    outputs = WORK / "listener-runs"
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir(parents=True)
    phases = (("tunelake_import", TUNELAKE), ("pandas_baseline", PANDAS), ("duckdb_read_json", DUCKDB))
    runs: dict[str, list[dict]] = {name: [] for name, _ in phases}
    try:
        for i in range(REPEAT):  # the phases take turns, so a slow spell of the machine hits all of them alike
            for name, code in phases:
                os.sync()
                warm_page_cache(export)
                runs[name].append(in_child(code, str(export), str(outputs / f"{name}-{i}")))
    finally:
        shutil.rmtree(outputs, ignore_errors=True)
    med = {name: _median(r) for name, r in runs.items()}
    imp, pandas, duck = med["tunelake_import"], med["pandas_baseline"], med["duckdb_read_json"]
    if imp["plays"] != PLAYS or pandas["plays"] != PLAYS or duck["plays"] != PLAYS:
        raise RuntimeError(f"a phase did not read {PLAYS} plays: {imp}, {pandas}, {duck}")
    vs_pandas = round(pandas["work_s"] / imp["work_s"], 2)
    vs_duckdb = round(imp["work_s"] / duck["work_s"], 2)
    out = {
        "export": gen,
        **{name: {**r, "plays_per_s": round(r["plays"] / r["work_s"])} for name, r in med.items()},
        "import_speed_vs_pandas": vs_pandas,
        "import_time_vs_duckdb_read_json": vs_duckdb,
        "with_process_start_and_imports": {
            "import_speed_vs_pandas": round(pandas["wall_s"] / imp["wall_s"], 2),
            "import_time_vs_duckdb_read_json": round(imp["wall_s"] / duck["wall_s"], 2)},
        "runs": REPEAT,
        "work_s_of_every_run": {name: [r["work_s"] for r in rs] for name, rs in runs.items()},
        "timing": "work_s: from after the modules are imported to the last file written (the ratios and plays_per_s "
                  "are of work_s); wall_s adds importing pandas / DuckDB / tunelake",
        "page_cache": "warm: the files read once, untimed, before each timed phase",
        "targets": {"import >= 2x pandas": vs_pandas >= 2, "import <= 1.3x duckdb read_json": vs_duckdb <= 1.3,
                    "moonshot: import >= 3x pandas": vs_pandas >= 3},
    }
    print(save("listener", out), file=sys.stderr)


if __name__ == "__main__":
    main()
