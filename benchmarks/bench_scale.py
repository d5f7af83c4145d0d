"""Issue 8 benchmark: tunelake at the scale a team has (1M and 10M plays; BENCH_SCALE=100m for 100M).

For each world size, each phase in its own child process (its peak RSS is its own; this parent holds no data):

1. the synthetic world (generated once, cached under benchmarks/work);
2. the full pipeline on DuckDB in ONE process: every listener through `tunelake.ingest.import_paths` (→ import
   rate and the import's own peak RSS, read right after it), the catalogue, then `tunelake.pipeline.run_pipeline`
   (warehouse → quality gates → features → segments → recommendations; no HTML report, as in the issue's list),
   per-step seconds read back from `meta_run`;
3. the dashboard's typical queries through the metric layer (`tunelake.analytics.insights`) on the built
   warehouse, read-only as the dashboard opens it: one cold call, then p50/p95 over BENCH_QUERY_RUNS (≥ 20);
4. the same pipeline on Spark (local) on the same lake (`force`, so it rebuilds), its time plus the import's
   giving its full run; the JVM's peak RSS is read from /proc (RUSAGE_SELF does not see it). A Spark failure is
   recorded as text, it does not fail the benchmark;
5. the pandas notebook baseline: `pd.read_json` per file → concat → `to_parquet`, then per-user features by
   groupby on the concatenated DataFrame, under an address-space cap so a scale it cannot handle ends in a
   recorded MemoryError instead of swapping the machine.

Environment: BENCH_SCALE (default 1m,10m), BENCH_ENGINES (default duckdb,spark), BENCH_QUERY_RUNS (default 25),
BENCH_DUCKDB_MEMORY_LIMIT / BENCH_SPARK_DRIVER_MEMORY (override the per-scale budgets below),
BENCH_PANDAS_CAP_GB (default 60 % of RAM), BENCH_KEEP=1 keeps the workspaces. Results go to
benchmarks/results/scale.json, merged by scale with what an earlier run measured at other scales.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import (
    IMPORT_ALL,
    RESULTS,
    SCALES,
    WORK,
    dir_mb,
    engines,
    in_child,
    save,
    scales,
    world_in_child,
)

# What the issue asks of DuckDB: scale → (full run seconds, peak RSS MB).
TARGETS = {"10m": (300, 4096), "100m": (3600, 8192)}
# Memory budgets per scale, below the targets so DuckDB spills instead of growing ("" = engine default).
DUCKDB_MEMORY = {"10m": "3GB", "100m": "6GB"}
SPARK_DRIVER_MEMORY = {"0.1m": "1g", "1m": "2g", "10m": "3g", "100m": "6g"}
TIMEOUT_S = {"0.1m": 1800, "1m": 3 * 3600, "10m": 4 * 3600, "100m": 10 * 3600}

# The pipeline after the import: catalogue, then `tunelake run`; argv: world, workspace, "force"|"", and optionally
# the catalogue folder when it is not the world's `catalog/` (bench_fullrun's sliced 100M world).
# Runs after IMPORT_ALL (then `result` holds the import's counts) or alone (`result = {}`).
PIPELINE = """
from pathlib import Path
from benchmarks.common import tree_peak_rss_mb
from tunelake.workspace import open_workspace
from tunelake.pipeline import run
from tunelake.curate.catalog import import_catalog
from tunelake.warehouse.store import open_warehouse
imp = dict(result)
if imp:
    imp["seconds"] = round(time.perf_counter() - _t0, 3)
    imp["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    imp["plays_per_s"] = round(imp["plays"] / imp["seconds"])
    imp["cpu_s"] = round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)
cfg = open_workspace(sys.argv[2])
_t = time.perf_counter()
import_catalog(cfg, Path(sys.argv[4]) if len(sys.argv) > 4 else Path(sys.argv[1]) / "catalog")
catalog_s = time.perf_counter() - _t
_t = time.perf_counter()
run = run(cfg, force=sys.argv[3] == "force", report=False)
pipeline_s = time.perf_counter() - _t
jvm_mb = tree_peak_rss_mb()
steps, skipped = {}, []
con = open_warehouse(cfg)
try:
    for step, secs, status, rows_in, rows_out in con.execute(
            "SELECT step, epoch(ended_at - started_at), status, rows_in, rows_out FROM meta_run "
            "WHERE run_id = ? ORDER BY started_at", [run.run_id]).fetchall():
        if status == "skipped":
            skipped.append(step)
            continue
        steps[step] = {"seconds": round(float(secs or 0), 3), "status": status}
        steps[step].update({k: v for k, v in (("rows_in", rows_in), ("rows_out", rows_out)) if v is not None})
    fact_play = con.execute("SELECT count(*) FROM fact_play").fetchone()[0]
finally:
    con.close()
rec = run.step("analytics")
details = rec.details if rec else {}
analytics = {k: details[k]["seconds"] for k in ("features", "segments", "recommendations")
             if isinstance(details.get(k), dict) and "seconds" in details[k]}
if rec and rec.status != "ok":
    analytics["status"] = rec.status + ": " + str(details.get("reason") or rec.error or "")[:300]
result = {"engine": cfg.settings.engine,
          "duckdb_memory_limit": cfg.settings.duckdb_memory_limit or "default (80% of RAM)",
          "catalog_s": round(catalog_s, 3), "pipeline_s": round(pipeline_s, 3), "steps": steps,
          "analytics_s": analytics, "fact_play_rows": fact_play, "status": run.status,
          "skipped_steps": ",".join(skipped) or "none"}
# Not inside a step: reading the curated zone, carrying the run log over, checkpoint and pointer switch, imports.
steps["outside_steps"] = {"seconds": round(pipeline_s - sum(v["seconds"] for v in steps.values()), 3)}
if imp:
    result["import"] = imp
if jvm_mb:
    result["descendants_peak_rss_mb"] = jvm_mb
result["python_cpu_s"] = round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)
"""

# The dashboard's typical questions through the metric layer; argv: workspace, runs.
DASHBOARD = """
from benchmarks.common import percentiles_ms
from tunelake.analytics import insights as I
from tunelake.workspace import open_workspace
from tunelake.warehouse.store import open_warehouse
cfg = open_workspace(sys.argv[1])
runs = int(sys.argv[2])
_t = time.perf_counter()
con = open_warehouse(cfg)
open_ms = (time.perf_counter() - _t) * 1000
last = con.execute("SELECT max(date) FROM agg_user_day").fetchone()[0]
year = str(last.year)
handle, user_key = con.execute("SELECT handle, user_key FROM dim_user ORDER BY plays DESC, handle LIMIT 1").fetchone()
start, end = I.period_range(year)
f_year, f_90, f_user = I.Filters(start=start, end=end), I.last_days(con, 90), I.Filters(user_keys=(int(user_key),))
queries = {
    "kpis_all_time": lambda: I.kpis(con),
    "kpis_last_90_days": lambda: I.kpis(con, f_90),
    "listening_over_time_month": lambda: I.listening_over_time(con, I.ALL, "month"),
    "listening_over_time_day_last_90_days": lambda: I.listening_over_time(con, f_90, "day"),
    "hour_weekday_heatmap": lambda: I.hour_weekday_heatmap(con),
    "top_artists_year": lambda: I.top_artists(con, f_year, 10),
    "top_tracks_year": lambda: I.top_tracks(con, f_year, 10),
    "user_kpis": lambda: I.kpis(con, f_user),
    "user_heatmap": lambda: I.hour_weekday_heatmap(con, f_user),
    "user_wrapped_year": lambda: I.wrapped(con, handle, year),
}
out = {}
for name, q in queries.items():
    try:
        _t = time.perf_counter(); q(); cold = time.perf_counter() - _t
        times = []
        for _ in range(runs):
            _t = time.perf_counter(); q(); times.append(time.perf_counter() - _t)
        out[name] = {"cold_ms": round(cold * 1000, 2), **percentiles_ms(times)}
    except Exception as exc:
        out[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
con.close()
ok = [v for v in out.values() if "p95_ms" in v]
result = {"open_ms": round(open_ms, 2), "period": year, "user": "the listener with the most plays",
          "queries": out, "worst_p95_ms": max((v["p95_ms"] for v in ok), default=None)}
result["cpu_s"] = round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)
"""

# The notebook a data scientist would write; argv: world, out dir, address-space cap in bytes.
PANDAS = """
cap = int(sys.argv[3])
if cap:
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from pathlib import Path
import numpy as np
import pandas as pd
out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
_t = time.perf_counter()
frames = []
for f in sorted(Path(sys.argv[1]).glob("exports/*/*/*.json")):
    df = pd.read_json(f)
    df["user"] = f.parent.parent.name
    frames.append(df)
read_s = time.perf_counter() - _t
_t = time.perf_counter()
plays = pd.concat(frames, ignore_index=True)
del frames
concat_s = time.perf_counter() - _t
_t = time.perf_counter()
plays.to_parquet(out / "plays.parquet")
parquet_s = time.perf_counter() - _t
import_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

_t = time.perf_counter()
m = plays[plays["spotify_track_uri"].notna()].copy()
m["ts"] = pd.to_datetime(m["ts"], utc=True)
m["artist"] = m["master_metadata_album_artist_name"]
hour, dow = m["ts"].dt.hour, m["ts"].dt.dayofweek
m["day"] = m["ts"].dt.floor("D")
m["night"], m["morning"] = hour < 6, hour.between(6, 11)
m["afternoon"], m["evening"] = hour.between(12, 17), hour >= 18
m["weekend"] = dow >= 5
m["skip"] = (m["ms_played"] < 30000) | m["skipped"].fillna(False).astype(bool)
m["shuffled"] = m["shuffle"].fillna(False).astype(bool)
m["mobile"] = m["platform"].str.lower().str.contains("android|ios", na=False)
m = m.sort_values(["user", "ts"])
m["session"] = (m.groupby("user")["ts"].diff() > pd.Timedelta(minutes=30)).groupby(m["user"]).cumsum()
g = m.groupby("user")
feats = pd.DataFrame({
    "plays": g.size(), "active_days": g["day"].nunique(), "hours": g["ms_played"].sum() / 3.6e6,
    "distinct_tracks": g["spotify_track_uri"].nunique(), "distinct_artists": g["artist"].nunique(),
    "night_share": g["night"].mean(), "morning_share": g["morning"].mean(),
    "afternoon_share": g["afternoon"].mean(), "evening_share": g["evening"].mean(),
    "weekend_share": g["weekend"].mean(), "skip_rate": g["skip"].mean(), "shuffle_rate": g["shuffled"].mean(),
    "mobile_share": g["mobile"].mean(),
})
counts = m.groupby(["user", "artist"]).size()
p = counts / counts.groupby(level=0).transform("sum")
feats["artist_entropy"] = -(p * np.log2(p)).groupby(level=0).sum()
s = m.groupby(["user", "session"]).agg(n=("ts", "size"), first=("ts", "min"), last=("ts", "max"))
s["minutes"] = (s["last"] - s["first"]).dt.total_seconds() / 60
sg = s.groupby(level=0)
feats["sessions"], feats["session_minutes_mean"] = sg.size(), sg["minutes"].mean()
feats["session_plays_mean"] = sg["n"].mean()
feats.to_parquet(out / "features.parquet")
features_s = time.perf_counter() - _t
result = {"plays": len(plays), "music_plays": len(m), "users": len(feats), "features": feats.shape[1],
          "read_json_s": round(read_s, 3), "concat_s": round(concat_s, 3), "to_parquet_s": round(parquet_s, 3),
          "import_s": round(read_s + concat_s + parquet_s, 3), "import_peak_rss_mb": round(import_peak, 1),
          "features_s": round(features_s, 3), "cap_gb": round(cap / 1024**3, 1)}
result["import_plays_per_s"] = round(result["plays"] / result["import_s"])
result["cpu_s"] = round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 1)
"""


def say(msg: str) -> None:
    print(f"[bench_scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def env(**values: str) -> Iterator[None]:
    """Environment for the children started inside the block (empty value = unset)."""
    old = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v:
                os.environ[k] = v
            else:
                os.environ.pop(k, None)
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def child(code: str, *args: str, timeout: int) -> dict[str, Any]:
    """in_child, but a failure or a timeout becomes {"error": …} so one engine cannot sink the benchmark."""
    t0 = time.perf_counter()
    try:
        return in_child(code, *args, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s", "wall_s": round(time.perf_counter() - t0, 3)}
    except RuntimeError as exc:
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        return {"error": (lines[-1] if lines else "failed")[:1500], "wall_s": round(time.perf_counter() - t0, 3)}


def pandas_cap() -> int:
    gb = os.environ.get("BENCH_PANDAS_CAP_GB")
    if gb:
        return int(float(gb) * 1024**3)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.6)


# Measured on the synthetic world: ~18 plays per listener-day, ~800 bytes of export JSON per play; the lake keeps
# a raw copy of every file, curated Parquet + warehouse files (one per engine) + the pandas Parquet add ~45 %.
PLAYS_PER_USER_DAY, JSON_BYTES_PER_PLAY, DISK_FACTOR = 18, 800, 1.45


def disk_shortfall(scale: str) -> str | None:
    """Why a scale cannot fit on this disk (None when it can): a shared machine must not be filled up."""
    p = SCALES[scale]
    json_bytes = p["users"] * p["days"] * PLAYS_PER_USER_DAY * JSON_BYTES_PER_PLAY
    cached = (WORK / f"world-{scale}" / "world.json").exists()
    need = json_bytes * DISK_FACTOR + (0 if cached else json_bytes)
    WORK.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(WORK).free
    if need <= free * 0.9 or os.environ.get("BENCH_IGNORE_DISK") == "1":
        return None
    return (f"needs ~{need / 1024**3:.0f} GB of disk under {WORK} ({'world cached, ' if cached else ''}"
            f"export JSON ~{json_bytes / 1024**3:.0f} GB + its raw-zone copy + Parquet and warehouse files), "
            f"{free / 1024**3:.0f} GB free; free space or point benchmarks/work at a larger disk "
            f"(BENCH_IGNORE_DISK=1 to try anyway)")


def run_scale(scale: str) -> dict[str, Any]:
    timeout = TIMEOUT_S.get(scale, 10 * 3600)
    short = disk_shortfall(scale)
    if short:
        say(f"{scale}: skipped: {short}")
        return {"scale": scale, "headline": {"skipped": short}, "skipped": short,
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    say(f"{scale}: world {SCALES[scale]}")
    gen = world_in_child(scale)
    w = Path(gen["path"])
    out: dict[str, Any] = {
        "scale": scale, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "world": {"users": SCALES[scale]["users"], "days": SCALES[scale]["days"], "json_mb": dir_mb(w / "exports"),
                  **({"generate_s": gen["wall_s"], "generate_peak_rss_mb": gen["peak_rss_mb"]}
                     if not gen["cached"] else {})},
    }
    ws = WORK / f"scale-ws-{scale}"
    shutil.rmtree(ws, ignore_errors=True)
    duck_mem = os.environ.get("BENCH_DUCKDB_MEMORY_LIMIT", DUCKDB_MEMORY.get(scale, ""))
    spark_mem = os.environ.get("BENCH_SPARK_DRIVER_MEMORY", SPARK_DRIVER_MEMORY.get(scale, "2g"))
    out["settings"] = {"duckdb_memory_limit": duck_mem or "default (80% of RAM)", "spark_driver_memory": spark_mem,
                       "spark_master": os.environ.get("TUNELAKE_SPARK_MASTER") or "local[*]",
                       "engines": ",".join(engines()), "report_step": "off (--no-report)"}
    imported: dict[str, Any] | None = None
    for engine in engines():
        first = imported is None
        say(f"{scale}: {'import + ' if first else ''}pipeline on {engine}")
        with env(TUNELAKE_ENGINE=engine, TUNELAKE_DUCKDB_MEMORY_LIMIT=duck_mem,
                 TUNELAKE_SPARK_DRIVER_MEMORY=spark_mem if engine == "spark" else ""):
            if first:
                res = child(IMPORT_ALL + PIPELINE, str(w), str(ws), "", timeout=timeout)
            else:
                res = child("result = {}\n" + PIPELINE, str(w), str(ws), "force", timeout=timeout)
        if "error" in res:
            out[engine] = {"error": res["error"], "wall_s": res["wall_s"]}
            say(f"{scale}: {engine} failed: {res['error'][:300]}")
            if first:  # the next engine imports again, into a clean workspace
                shutil.rmtree(ws, ignore_errors=True)
            continue
        if first and "import" in res:
            imported = res.pop("import")
            out["import"] = imported
        python_peak = res.pop("peak_rss_mb")
        tree = res.pop("descendants_peak_rss_mb", 0.0)
        import_s = imported["seconds"] if imported else 0.0
        full = res["wall_s"] if first else round(import_s + res["wall_s"], 3)
        peak = max(python_peak + tree, imported["peak_rss_mb"] if imported else 0.0)
        out[engine] = {"full_run_s": full, "peak_rss_mb": round(peak, 1), "python_peak_rss_mb": python_peak,
                       **({"jvm_and_workers_peak_rss_mb": tree} if tree else {}),
                       "full_run_is": ("one process: import + catalogue + run" if first else
                                       "import (measured with the first engine) + a separate catalogue + run "
                                       "process on the same lake"),
                       "plays_per_s_end_to_end": round(imported["plays"] / full) if imported else None,
                       **{k: v for k, v in res.items() if k != "wall_s"}}
        if first or "dashboard" not in out:
            say(f"{scale}: dashboard queries on the {engine}-built warehouse")
            runs = max(20, int(os.environ.get("BENCH_QUERY_RUNS", "25")))
            dash = child(DASHBOARD, str(ws), str(runs), timeout=timeout)
            if "error" not in dash:
                dash["warehouse_built_by"] = engine
            out["dashboard"] = dash
    say(f"{scale}: pandas notebook baseline")
    pdo = WORK / f"scale-pandas-{scale}"
    shutil.rmtree(pdo, ignore_errors=True)
    with env(MALLOC_ARENA_MAX="2"):
        base = child(PANDAS, str(w), str(pdo), str(pandas_cap()), timeout=timeout)
    if "error" in base and "MemoryError" in base["error"]:
        base["error"] = f"MemoryError under a {pandas_cap() / 1024**3:.1f} GB address-space cap (BENCH_PANDAS_CAP_GB)"
    shutil.rmtree(pdo, ignore_errors=True)
    out["pandas_baseline"] = base
    out["comparison"] = compare(out)
    out["targets"] = targets(scale, out)
    out = {"scale": scale, "headline": headline(out), **out}
    parts = {str(p.relative_to(ws)): dir_mb(p) for p in sorted([*ws.glob("*"), *ws.glob("lake/*")]) if p.is_dir()}
    out["workspace_mb"] = {"total": dir_mb(ws), **parts}
    if os.environ.get("BENCH_KEEP") != "1":
        shutil.rmtree(ws, ignore_errors=True)
    return out


def headline(out: dict[str, Any]) -> dict[str, Any]:
    """The figures the issue asks for, first in the rendered table (the rest is the detail behind them)."""
    h: dict[str, Any] = {"plays": (out.get("import") or {}).get("plays")}
    if out.get("import"):
        h["import_plays_per_s"] = out["import"]["plays_per_s"]
        h["import_peak_rss_mb"] = out["import"]["peak_rss_mb"]
    for engine in engines():
        e = out.get(engine, {})
        if "error" in e:
            h[f"{engine}_full_run"] = "failed: " + e["error"][:160]
        elif e:
            h[f"{engine}_full_run_s"] = e["full_run_s"]
            h[f"{engine}_peak_rss_mb"] = e["peak_rss_mb"]
    dash = out.get("dashboard", {})
    if "worst_p95_ms" in dash:
        h["dashboard_worst_p95_ms"] = dash["worst_p95_ms"]
    base = out.get("pandas_baseline", {})
    h["pandas_import_plays_per_s"] = base.get("import_plays_per_s", "failed" if "error" in base else None)
    h.update({k: v for k, v in out.get("comparison", {}).items() if k in ("import_vs_pandas",
                                                                         "features_speedup_vs_pandas")})
    return {k: v for k, v in h.items() if v is not None}


def compare(out: dict[str, Any]) -> dict[str, Any]:
    base, imp, duck = out.get("pandas_baseline", {}), out.get("import"), out.get("duckdb", {})
    cmp: dict[str, Any] = {}
    if imp and "import_plays_per_s" in base:
        cmp["import_vs_pandas"] = round(imp["plays_per_s"] / base["import_plays_per_s"], 2)
    feat = (duck.get("analytics_s") or {}).get("features")
    if feat and "features_s" in base:
        cmp["tunelake_features_s"] = feat
        cmp["pandas_features_s"] = base["features_s"]
        cmp["features_speedup_vs_pandas"] = round(base["features_s"] / feat, 2) if feat else None
    if "error" in base:
        cmp["pandas"] = "failed: " + base["error"][:200]
    return cmp


def targets(scale: str, out: dict[str, Any]) -> dict[str, Any]:
    if scale not in TARGETS:
        return {"note": "the issue sets targets for 10m and 100m only"}
    secs, mb = TARGETS[scale]
    duck = out.get("duckdb", {})
    if "full_run_s" not in duck:
        return {"note": "no DuckDB run to check"}
    return {f"duckdb full run < {secs} s": duck["full_run_s"] < secs,
            f"duckdb peak RSS < {mb} MB": duck["peak_rss_mb"] < mb}


def main() -> None:
    unknown = [s for s in scales() if s not in SCALES]
    if unknown:
        sys.exit(f"unknown BENCH_SCALE {', '.join(unknown)}; known: {', '.join(SCALES)}")
    previous: dict[str, Any] = {}
    path = RESULTS / "scale.json"
    if path.exists():
        try:
            previous = json.loads(path.read_text()).get("results", {})
        except ValueError:
            previous = {}
    # Earlier real scales are kept; a try-out at 0.1m never lingers into the lead's results.
    results = {k: v for k, v in previous.items() if k in SCALES and k != "0.1m"}
    for scale in scales():
        t0 = time.perf_counter()
        results[scale] = run_scale(scale)
        say(f"{scale}: done in {time.perf_counter() - t0:.0f} s")
        # Saved after every scale, so a long 100M run that dies keeps the smaller scales.
        ordered = {k: results[k] for k in SCALES if k in results}
        save("scale", {"scales_this_run": ",".join(scales()), "results": ordered})
    print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
