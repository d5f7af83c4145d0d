"""The dashboard's typical queries on the aggregate tables vs the same questions on fact_play alone.

    python benchmarks/bench_queries.py                 # 10M plays (the issue's target), a few minutes
    python benchmarks/bench_queries.py --plays 1000000 # quicker

Builds a synthetic world sized to the requested number of plays, loads its extended-history files straight into
the curated zone with DuckDB (the regular importer validates every record and is much slower; the warehouse
build is the regular one), builds the warehouse, then times each query ≥ 20 times on a read-only connection, as
the dashboard opens it. Writes benchmarks/results/queries.json (p50/p95 in ms per query and variant).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from tunelake.curate.catalog import import_catalog
from tunelake.curate.ingest import write_users_table
from tunelake.curate.plays import PLAY_ID_SQL
from tunelake.lake import manifest, zones
from tunelake.pipeline import run as run_steps
from tunelake.pipeline.steps import build_step, commit_step
from tunelake.sources.types import PLAYS
from tunelake.synthetic.world import generate_world
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import open_workspace

PLAYS_PER_USER_DAY = 18.0  # measured on the synthetic world (track plays, all listener types)
TARGET_P95_MS = 250.0
OUT = Path(__file__).resolve().parent / "results" / "queries.json"

# Extended streaming history → curated plays, in SQL (what sources/export.py does record by record).
CURATE_SQL = """
WITH raw AS (
    SELECT * , regexp_extract(filename, 'exports/([^/]+)/', 1) AS handle
    FROM read_json('{glob}', format = 'array', filename = true, union_by_name = true,
                   columns = {{ts: 'VARCHAR', platform: 'VARCHAR', ms_played: 'BIGINT', conn_country: 'VARCHAR',
                              master_metadata_track_name: 'VARCHAR', master_metadata_album_artist_name: 'VARCHAR',
                              master_metadata_album_album_name: 'VARCHAR', spotify_track_uri: 'VARCHAR',
                              episode_name: 'VARCHAR', episode_show_name: 'VARCHAR', spotify_episode_uri: 'VARCHAR',
                              audiobook_title: 'VARCHAR', audiobook_uri: 'VARCHAR',
                              audiobook_chapter_uri: 'VARCHAR', audiobook_chapter_title: 'VARCHAR',
                              reason_start: 'VARCHAR', reason_end: 'VARCHAR', shuffle: 'BOOLEAN',
                              skipped: 'BOOLEAN', offline: 'BOOLEAN', offline_timestamp: 'BIGINT',
                              incognito_mode: 'BOOLEAN'}})
), typed AS (
    SELECT
        u.user_key,
        CAST(NULL AS VARCHAR) AS play_id,
        CAST(strptime(r.ts, '%Y-%m-%dT%H:%M:%SZ') AS TIMESTAMP_MS) AS ended_at,
        's' AS ts_precision,
        r.ms_played,
        CASE WHEN r.spotify_track_uri IS NOT NULL THEN 'track'
             WHEN r.spotify_episode_uri IS NOT NULL THEN 'episode'
             WHEN r.audiobook_uri IS NOT NULL OR r.audiobook_chapter_uri IS NOT NULL THEN 'audiobook'
             ELSE 'unknown' END AS content_type,
        'audio' AS media_type,
        split_part(r.spotify_track_uri, ':', 3) AS track_id,
        r.master_metadata_track_name AS track_name,
        r.master_metadata_album_artist_name AS artist_name,
        r.master_metadata_album_album_name AS album_name,
        split_part(r.spotify_episode_uri, ':', 3) AS episode_id,
        r.episode_name, r.episode_show_name AS show_name,
        split_part(r.audiobook_uri, ':', 3) AS audiobook_id, r.audiobook_title,
        split_part(r.audiobook_chapter_uri, ':', 3) AS chapter_id, r.audiobook_chapter_title AS chapter_title,
        r.reason_start, r.reason_end, r.shuffle, r.skipped, r.offline,
        CAST(NULL AS TIMESTAMP_MS) AS offline_at, r.incognito_mode AS incognito, r.platform, r.conn_country,
        CAST(NULL AS VARCHAR) AS ip_addr, CAST(NULL AS VARCHAR) AS user_agent, CAST(NULL AS VARCHAR) AS username,
        'extended' AS source, 'bench' AS batch_id, CAST(0 AS INTEGER) AS record_no
    FROM raw AS r JOIN handles AS u ON u.handle = r.handle
)
SELECT * REPLACE ({play_id} AS play_id)
FROM (
    SELECT * REPLACE (nullif(track_id, '') AS track_id, nullif(episode_id, '') AS episode_id,
                      nullif(audiobook_id, '') AS audiobook_id, nullif(chapter_id, '') AS chapter_id)
    FROM typed
) AS t
QUALIFY row_number() OVER (PARTITION BY {play_id} ORDER BY ended_at) = 1
"""

# name → (on the aggregates, on fact_play only). {lo}/{hi} are date keys, {m_lo}/{m_hi} month starts, {user} a key.
QUERIES: dict[str, tuple[str, str]] = {
    "overview_kpis": (
        """SELECT count(DISTINCT user_key) AS listeners, sum(plays) AS plays, sum(streams) AS streams,
                  sum(ms_played) / 3.6e6 AS hours, sum(skips) / sum(plays) AS skip_rate,
                  count(DISTINCT date_key) AS days
           FROM agg_user_day WHERE date_key BETWEEN {lo} AND {hi}""",
        """SELECT count(DISTINCT user_key) AS listeners, count(*) AS plays,
                  count(*) FILTER (WHERE is_stream) AS streams, sum(ms_played) / 3.6e6 AS hours,
                  avg(CASE WHEN is_skip THEN 1.0 ELSE 0.0 END) AS skip_rate, count(DISTINCT date_key) AS days
           FROM fact_play WHERE date_key BETWEEN {lo} AND {hi}""",
    ),
    "monthly_listening": (
        """SELECT CAST(date_trunc('month', date) AS DATE) AS month, sum(ms_played) / 3.6e6 AS hours,
                  sum(plays) AS plays, count(DISTINCT user_key) AS listeners
           FROM agg_user_day GROUP BY 1 ORDER BY 1""",
        """SELECT d.month_start AS month, sum(f.ms_played) / 3.6e6 AS hours, count(*) AS plays,
                  count(DISTINCT f.user_key) AS listeners
           FROM fact_play AS f JOIN dim_date AS d ON d.date_key = f.date_key GROUP BY 1 ORDER BY 1""",
    ),
    "hour_weekday_heatmap": (
        """SELECT local_weekday, local_hour, sum(plays) AS plays, sum(ms_played) / 3.6e6 AS hours
           FROM agg_user_day_hour WHERE date_key BETWEEN {lo} AND {hi} GROUP BY 1, 2 ORDER BY 1, 2""",
        """SELECT local_weekday, local_hour, count(*) AS plays, sum(ms_played) / 3.6e6 AS hours
           FROM fact_play WHERE date_key BETWEEN {lo} AND {hi} GROUP BY 1, 2 ORDER BY 1, 2""",
    ),
    "top_artists_period": (
        """SELECT a.artist_name, t.plays, t.hours FROM (
               SELECT artist_id, sum(plays) AS plays, sum(ms_played) / 3.6e6 AS hours
               FROM agg_user_artist_month WHERE month_start BETWEEN DATE '{m_lo}' AND DATE '{m_hi}'
               GROUP BY 1 ORDER BY hours DESC LIMIT 20) AS t
           JOIN dim_artist AS a USING (artist_id) ORDER BY t.hours DESC""",
        """SELECT a.artist_name, t.plays, t.hours FROM (
               SELECT artist_id, count(*) AS plays, sum(ms_played) / 3.6e6 AS hours
               FROM fact_play WHERE date_key BETWEEN {m_lo_key} AND {m_hi_key}
               GROUP BY 1 ORDER BY hours DESC LIMIT 20) AS t
           JOIN dim_artist AS a USING (artist_id) ORDER BY t.hours DESC""",
    ),
    "user_profile": (
        """SELECT 'month' AS part, CAST(CAST(date_trunc('month', date) AS DATE) AS VARCHAR) AS k, sum(ms_played) AS v
           FROM agg_user_day WHERE user_key = {user} GROUP BY 1, 2
           UNION ALL
           SELECT * FROM (SELECT 'artist', artist_id, sum(ms_played) FROM agg_user_artist_month
                          WHERE user_key = {user} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10)
           UNION ALL
           SELECT * FROM (SELECT 'track', track_id, sum(ms_played) FROM agg_user_track_month
                          WHERE user_key = {user} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10)
           UNION ALL
           SELECT 'hour', CAST(local_hour AS VARCHAR), sum(ms_played) FROM agg_user_day_hour
           WHERE user_key = {user} GROUP BY 1, 2""",
        """SELECT 'month' AS part, CAST(d.month_start AS VARCHAR) AS k, sum(f.ms_played) AS v
           FROM fact_play AS f JOIN dim_date AS d ON d.date_key = f.date_key WHERE f.user_key = {user} GROUP BY 1, 2
           UNION ALL
           SELECT * FROM (SELECT 'artist', artist_id, sum(ms_played) FROM fact_play
                          WHERE user_key = {user} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10)
           UNION ALL
           SELECT * FROM (SELECT 'track', track_id, sum(ms_played) FROM fact_play
                          WHERE user_key = {user} GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10)
           UNION ALL
           SELECT 'hour', CAST(local_hour AS VARCHAR), sum(ms_played) FROM fact_play
           WHERE user_key = {user} GROUP BY 1, 2""",
    ),
}


def make_world(workspace: Path, plays: int, seed: int) -> dict[str, float]:
    """Synthetic world → curated zone → warehouse. Returns timings."""
    timings: dict[str, float] = {}
    days = 365
    users = max(2, math.ceil(plays / (PLAYS_PER_USER_DAY * days)))
    world = workspace / "world"
    t0 = time.perf_counter()
    summary = generate_world(world, users=users, days=days, seed=seed, account_data=False,
                             progress=lambda d, t: d % 100 == 0 and print(f"generated {d}/{t} listeners",
                                                                          file=sys.stderr))
    timings["generate_s"] = time.perf_counter() - t0
    timings["users"] = users
    timings["generated_track_plays"] = summary.track_plays

    cfg = open_workspace(workspace)
    lake = cfg.lake
    t0 = time.perf_counter()
    handles = sorted(p.name for p in (world / "exports").iterdir() if p.is_dir())
    for h in handles:
        manifest.register_user(lake, h)
    write_users_table(lake)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE handles AS SELECT * FROM (VALUES " + ", ".join(
        f"('{h}', {manifest.user_key_for(h)})" for h in handles) + ") AS t(handle, user_key)")
    glob = str(world / "exports" / "*" / "Spotify Extended Streaming History" / "*.json")
    sql = CURATE_SQL.format(glob=glob, play_id=PLAY_ID_SQL)
    cols = ", ".join(f.name for f in PLAYS)
    out = Path(lake.path(zones.curated_table_dir("plays")))
    con.execute(f"COPY (SELECT {cols} FROM ({sql})) TO '{out}' (FORMAT parquet, PARTITION_BY (user_key), "
                "OVERWRITE_OR_IGNORE true, COMPRESSION zstd)")
    con.close()
    import_catalog(cfg, world / "catalog")
    timings["curate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    run = run_steps(cfg, force=True, steps=[("build", build_step), ("commit", commit_step)])  # no gates: timed alone
    rows = run.step("build").details["rows"]
    timings["build_s"] = time.perf_counter() - t0
    timings["fact_play_rows"] = rows["fact_play"]
    timings["rows"] = rows
    timings["requested_plays"] = plays
    return timings


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def time_queries(workspace: Path, runs: int) -> dict[str, dict[str, dict[str, float]]]:
    cfg = open_workspace(workspace)
    con = open_warehouse(cfg)
    hi_date = con.execute("SELECT max(date) FROM agg_user_day").fetchone()[0]
    quarter_lo = con.execute("SELECT CAST(date_trunc('month', max(date) - INTERVAL 3 MONTH) AS DATE) "
                             "FROM agg_user_day").fetchone()[0]
    m_hi = con.execute("SELECT CAST(date_trunc('month', max(date)) AS DATE) FROM agg_user_day").fetchone()[0]
    last90 = con.execute("SELECT CAST(max(date) - INTERVAL 90 DAY AS DATE) FROM agg_user_day").fetchone()[0]
    user = con.execute("SELECT user_key FROM dim_user ORDER BY plays DESC LIMIT 1").fetchone()[0]
    key = lambda d: d.year * 10000 + d.month * 100 + d.day  # noqa: E731
    month_end = con.execute(f"SELECT CAST(DATE '{m_hi}' + INTERVAL 1 MONTH - INTERVAL 1 DAY AS DATE)").fetchone()[0]
    params = {"lo": key(last90), "hi": key(hi_date), "m_lo": quarter_lo, "m_hi": m_hi, "m_lo_key": key(quarter_lo),
              "m_hi_key": key(month_end), "user": user}
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, (agg_sql, fact_sql) in QUERIES.items():
        results[name] = {}
        answers = {}
        for variant, sql in (("aggregates", agg_sql), ("fact_play", fact_sql)):
            q = sql.format(**params)
            for _ in range(2):  # warm-up: first touch of the file's blocks
                con.execute(q).fetchall()
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                rows = con.execute(q).fetchall()
                times.append((time.perf_counter() - t0) * 1000)
            answers[variant] = rows
            results[name][variant] = {"p50_ms": round(percentile(times, 0.5), 2),
                                      "p95_ms": round(percentile(times, 0.95), 2),
                                      "max_ms": round(max(times), 2), "runs": runs, "rows": len(rows)}
        results[name]["speedup_p50"] = round(results[name]["fact_play"]["p50_ms"] /
                                             max(results[name]["aggregates"]["p50_ms"], 1e-3), 1)
        results[name]["same_answer"] = _same(answers["aggregates"], answers["fact_play"])
        print(f"{name:22s} aggregates p50 {results[name]['aggregates']['p50_ms']:8.1f} ms  p95 "
              f"{results[name]['aggregates']['p95_ms']:8.1f} ms | fact_play p50 "
              f"{results[name]['fact_play']['p50_ms']:8.1f} ms  p95 {results[name]['fact_play']['p95_ms']:8.1f} ms",
              file=sys.stderr)
    con.close()
    return results


def _same(a: list[tuple], b: list[tuple]) -> bool:
    """The two variants answer the same question: compare with floats rounded."""
    def norm(rows: list[tuple]) -> list[tuple]:
        return sorted(tuple(round(float(v), 3) if isinstance(v, float) else (str(v) if v is not None else "")
                            for v in r) for r in rows)
    return norm(a) == norm(b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plays", type=int, default=10_000_000, help="Approximate music plays to generate")
    ap.add_argument("--runs", type=int, default=20, help="Timed runs per query and variant (≥ 20)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workspace", type=Path, help="Reuse/keep this workspace (default: a temporary one)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    runs = max(20, args.runs)
    tmp = None
    workspace = args.workspace
    if workspace is None:
        tmp = tempfile.mkdtemp(prefix="tunelake-bench-")
        workspace = Path(tmp)
    try:
        saved = workspace / "bench_world.json"
        if (workspace / "warehouse" / "CURRENT.json").exists() and saved.exists():
            world = {**json.loads(saved.read_text()), "reused_workspace": str(workspace)}
        else:
            world = make_world(workspace, args.plays, args.seed)
            saved.write_text(json.dumps(world, default=str))
        load_before = os.getloadavg()
        queries = time_queries(workspace, runs)
        load_after = os.getloadavg()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    worst = max(q["aggregates"]["p95_ms"] for q in queries.values())
    result = {
        "benchmark": "dashboard queries: aggregates vs fact_play",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "requested_plays": world.get("requested_plays", args.plays),
        "world": world,
        "target_p95_ms": TARGET_P95_MS,
        "aggregates_worst_p95_ms": worst,
        "meets_target": worst < TARGET_P95_MS,
        "queries": queries,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "duckdb": duckdb.__version__,
                    "platform": platform.platform(),
                    # The machine may be shared: latencies grow with the load average seen while timing.
                    "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}: worst aggregate p95 {worst:.1f} ms (target < {TARGET_P95_MS:.0f} ms)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
