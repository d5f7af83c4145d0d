"""Issue 21: how long a play takes from landing at Spotify to being on the dashboard, on a 10M-play warehouse.

1. A workspace holding every listener of the 10M world but the last five (their exports and the catalogue), after
   a full `tunelake run`.
2. The last five listeners are the live ones: `fake-spotify --live BENCH_FRESH_SPEED` serves them (the same world,
   seed and catalogue, generated with `only=` those five), they log in, and one `tunelake collect --interval
   BENCH_FRESH_INTERVAL` runs with its pipeline (`pipeline_min_interval_s` BENCH_FRESH_DEBOUNCE) for
   BENCH_FRESH_SECONDS.
3. Every 2 s the benchmark reads the fake's clock and, like the dashboard, the current warehouse file (read-only):
   the latest play of each live listener there. A play "lands" when the simulated clock passes its end; it is "on
   the dashboard" at the first read that holds it. The latency of every play that landed after the collector's
   first pipeline run is reported (p50/p95/max), with what bounds it: the poll interval, the debounce and the
   pipeline's own time (from the run log).

BENCH_SCALE=1m tries it on the 1M world. BENCH_REUSE=1 keeps the workspace of an earlier run as it is (the live
listeners then carry that run's plays, and this run's come on top).
Writes benchmarks/results/freshness.json.
"""

from __future__ import annotations

import bisect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks.common import ROOT, SCALES, WORK, in_child, percentiles_ms, save, world_in_child

LIVE = 5
SPEED = float(os.environ.get("BENCH_FRESH_SPEED", "600"))  # ~18 plays a listener-day: 10 days an hour
SKIP_S = 9 * 3600
INTERVAL = int(os.environ.get("BENCH_FRESH_INTERVAL", "60"))
DEBOUNCE = int(os.environ.get("BENCH_FRESH_DEBOUNCE", "0"))
SECONDS = float(os.environ.get("BENCH_FRESH_SECONDS", "720"))
PORT = 8797

SETUP = """
from pathlib import Path
from tunelake.workspace import open_workspace
from tunelake.curate.parallel import import_many
from tunelake.curate.catalog import import_catalog
from tunelake.pipeline import run
world, ws_root, live = Path(sys.argv[1]), Path(sys.argv[2]), set(sys.argv[3].split(","))
ws = open_workspace(ws_root, {"duckdb_memory_limit": "3GB"})
jobs = [(d.name, [str(d)]) for d in sorted((world / "exports").iterdir()) if d.is_dir() and d.name not in live]
t = time.perf_counter()
summaries = import_many(ws, jobs)
imported = time.perf_counter() - t
import_catalog(ws, world / "catalog")
t = time.perf_counter()
run(ws, report=False)
result = {"listeners": len(jobs), "plays_read": sum(s.total("read") for s in summaries),
          "import_s": round(imported, 1), "full_run_s": round(time.perf_counter() - t, 1)}
"""

LIVE_WORLD = """
from tunelake.synthetic.world import generate_world
n, days, seed = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
generate_world(sys.argv[1], users=n, days=days, seed=seed, account_data=False, only=range(n - int(sys.argv[5]), n))
result = {}
"""

LOGIN = """
from tunelake.workspace import open_workspace
from tunelake.curate import pull
ws = open_workspace(sys.argv[1], {"spotify_api_url": sys.argv[2], "spotify_accounts_url": sys.argv[3],
                                   "spotify_client_id": "bench"})
for h in sys.argv[4].split(","):
    pull.login(ws, h, method="auto")
result = {}
"""

RUNS = """
from datetime import datetime
from tunelake.workspace import open_workspace
from tunelake.pipeline.runlog import read_run_logs
ws = open_workspace(sys.argv[1])
out = []
for log in read_run_logs(ws.lake):
    steps = log.get("steps", [])
    if not steps:
        continue
    t0 = datetime.fromisoformat(steps[0]["started_at"]).timestamp()
    t1 = datetime.fromisoformat(steps[-1]["ended_at"]).timestamp() if steps[-1].get("ended_at") else None
    build = next((s for s in steps if s["step"] == "build"), {}).get("details", {})
    out.append({"started": t0, "ended": t1, "mode": build.get("mode"), "status": log.get("status")})
result = {"runs": out}
"""


def _env(ws: Path, api: str, accounts: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TUNELAKE_HOME": str(ws), "TUNELAKE_SPOTIFY_API_URL": api,
            "TUNELAKE_SPOTIFY_ACCOUNTS_URL": accounts, "TUNELAKE_SPOTIFY_CLIENT_ID": "bench",
            "TUNELAKE_PIPELINE_MIN_INTERVAL_S": str(DEBOUNCE), "TUNELAKE_DUCKDB_MEMORY_LIMIT": "3GB"}


def _latest(ws: Path, keys: dict[int, str]) -> dict[str, int]:
    """What the dashboard would show now: each live listener's latest play end (epoch ms) in the current file."""
    import duckdb

    from tunelake.warehouse.store import current_warehouse_file
    from tunelake.workspace import open_workspace

    try:
        path = current_warehouse_file(open_workspace(ws))
        con = duckdb.connect(str(path), read_only=True)
    except Exception:  # the pointer moved between reading it and opening the file: read again next time
        return {}
    try:
        rows = con.execute(f"SELECT user_key, epoch_ms(max(ended_at)) FROM fact_play WHERE user_key IN "
                           f"({','.join(str(k) for k in keys)}) GROUP BY 1").fetchall()
    finally:
        con.close()
    return {keys[int(k)]: int(ms) for k, ms in rows if ms is not None}


def main() -> None:
    from tunelake.lake.manifest import user_key_for

    scale = os.environ.get("BENCH_SCALE", "10m").split(",")[0]
    scale = scale if scale in SCALES else "10m"
    p = SCALES[scale]
    world_in_child(scale)
    world = WORK / f"world-{scale}"
    live = [f"listener-{i:04d}" for i in range(p["users"] - LIVE + 1, p["users"] + 1)]
    live_world = WORK / f"world-{scale}-live{LIVE}"
    if not (live_world / "world.json").exists():
        in_child(LIVE_WORLD, str(live_world), str(p["users"]), str(p["days"]), "1", str(LIVE))
    base_dir = WORK / f"freshness-{scale}"
    ws = base_dir / "ws"  # not a copy: a copied file has a new inode, and so a new signature (a full build)
    if os.environ.get("BENCH_REUSE") == "1" and (ws / "warehouse" / "CURRENT.json").exists():
        setup = json.loads((base_dir / "setup.json").read_text()) | {"reused": True}
    else:
        shutil.rmtree(base_dir, ignore_errors=True)
        base_dir.mkdir(parents=True)
        setup = in_child(SETUP, str(world), str(ws), ",".join(live))
        (base_dir / "setup.json").write_text(json.dumps(setup))

    url = f"http://127.0.0.1:{PORT}"
    api, accounts = f"{url}/v1/", url
    server = subprocess.Popen([sys.executable, "-m", "tunelake.cli", "fake-spotify", "--world", str(live_world),
                               "--port", str(PORT), "--live", "0"], env=_env(ws, "", ""),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    collector = None
    try:
        for _ in range(600):
            if server.poll() is not None:
                raise RuntimeError(f"fake-spotify exited: {server.stderr.read()[-400:]}")
            try:
                if requests.get(f"{url}/_live/clock", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        in_child(LOGIN, str(ws), api, accounts, ",".join(live))
        # from the world's end (midnight UTC) to the morning, when listeners listen; the skipped hours are the
        # first poll's backlog, left out of the latencies below
        requests.post(f"{url}/_live/clock", json={"advance": SKIP_S, "speed": SPEED}, timeout=10)
        collector = subprocess.Popen([sys.executable, "-m", "tunelake.cli", "collect", "--interval", str(INTERVAL)],
                                     env=_env(ws, api, accounts), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        keys = {user_key_for(h): h for h in live}
        clock: list[tuple[int, float]] = []  # (simulated now ms, wall time)
        seen: dict[str, list[tuple[float, int]]] = {h: [] for h in live}  # wall time → latest play shown
        t0 = time.time()
        while time.time() - t0 < SECONDS and collector.poll() is None:
            now = requests.get(f"{url}/_live/clock", timeout=10).json()["now_ms"]
            clock.append((int(now), time.time()))
            for h, ms in _latest(ws, keys).items():
                seen[h].append((time.time(), ms))
            time.sleep(2.0)
        collector.send_signal(signal.SIGTERM)
        _, err = collector.communicate(timeout=600)
        requests.post(f"{url}/_live/clock", json={"speed": 0}, timeout=10)
        runs = in_child(RUNS, str(ws))["runs"]
        runs = [r for r in runs if r["started"] >= t0]
        first_done = next((r["ended"] for r in runs if r["ended"]), None)
        latencies, pending, total = [], 0, 0
        sims = [c[0] for c in clock]
        for h in live:
            plays = [x["played_at_ms"] for x in requests.get(f"{url}/_live/truth", params={"user": h},
                                                             timeout=60).json()["plays"]]
            for ms in plays:
                i = bisect.bisect_left(sims, ms)
                if i == 0 or i >= len(clock):
                    continue  # before the measurement began, or after it ended
                landed = clock[i][1]
                if first_done is None or landed < first_done:
                    continue  # the backlog of the first poll and the first pipeline run
                total += 1
                shown = next((t for t, latest in seen[h] if latest >= ms and t >= landed), None)
                if shown is None:
                    pending += 1  # landed but not on the dashboard when the measurement stopped
                else:
                    latencies.append(shown - landed)
        durations = [r["ended"] - r["started"] for r in runs if r["ended"]]
        out: dict[str, Any] = {
            "scale": scale, "warehouse_setup": setup, "live_listeners": LIVE, "speed": SPEED, "interval_s": INTERVAL,
            "pipeline_min_interval_s": DEBOUNCE, "measured_s": round(time.time() - t0, 1),
            "plays_landed_after_first_run": total, "plays_shown": len(latencies),
            "plays_not_yet_shown_at_end": pending,
            "play_to_dashboard": percentiles_ms(latencies) if latencies else {},
            "pipeline_runs": len(runs), "pipeline_run_s": percentiles_ms(durations) if durations else {},
            "modes": sorted({str(r["mode"]) for r in runs}),
            "collector_exit": collector.returncode, "stderr_tail": err[-400:],
        }
        save("freshness", out)
        print(json.dumps({k: out[k] for k in ("plays_shown", "play_to_dashboard", "pipeline_run_s")}))
    finally:
        if collector is not None and collector.poll() is None:
            collector.kill()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
