"""Issue 21: one `tunelake collect` process for many listeners against `fake-spotify --live` (its own process).

BENCH_COLLECT_LISTENERS (1000) listeners of a synthetic world keep listening at BENCH_COLLECT_SPEED (10× real
time); every listener is logged in through the fake accounts service; the collector runs for BENCH_COLLECT_SECONDS
(600) with `--interval` BENCH_COLLECT_INTERVAL (120 s wall = 20 simulated minutes, the real default of 600 s at 10×
less; the first round also takes every listener's snapshots) and no pipeline, then gets SIGTERM. Measured: polls
per second, the collector's CPU (user + system over wall) and peak RSS, and plays lost: plays of the ground truth
(`/_live/truth`) that are neither in the lake nor among the last 50 the API still shows at the end (those are not
lost, only not polled yet). Must be 0. Writes benchmarks/results/collect.json.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import requests

from benchmarks.common import ROOT, WORK, in_child, save

N = int(os.environ.get("BENCH_COLLECT_LISTENERS", "1000"))
SPEED = float(os.environ.get("BENCH_COLLECT_SPEED", "10"))
SECONDS = float(os.environ.get("BENCH_COLLECT_SECONDS", "600"))
INTERVAL = float(os.environ.get("BENCH_COLLECT_INTERVAL", "120"))
PORT = 8799

LOGIN = """
from tunelake.workspace import open_workspace
from tunelake.curate import pull
ws = open_workspace(sys.argv[1], {"spotify_api_url": sys.argv[2], "spotify_accounts_url": sys.argv[3],
                                   "spotify_client_id": "bench"})
handles = sys.argv[4].split(",")
for h in handles:
    pull.login(ws, h, method="auto")
result = {"logged_in": len(handles)}
"""

COUNT = """
import pyarrow.compute as pc
from tunelake.workspace import open_workspace
from tunelake.curate.plays import read_user_plays
from tunelake.lake import manifest
ws = open_workspace(sys.argv[1])
out = {}
for h in sys.argv[2].split(","):
    t = read_user_plays(ws.lake, manifest.user_key_for(h))
    t = t.filter(pc.equal(t["source"], "api"))
    out[h] = sorted(pc.cast(t["ended_at"], "int64").to_pylist())
result = {"plays": out}
"""


def _env(ws: str, api: str, accounts: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TUNELAKE_HOME": ws, "TUNELAKE_SPOTIFY_API_URL": api,
            "TUNELAKE_SPOTIFY_ACCOUNTS_URL": accounts, "TUNELAKE_SPOTIFY_CLIENT_ID": "bench"}


def main() -> None:
    world = WORK / f"world-collect-{N}"
    if not (world / "world.json").exists():
        in_child("from tunelake.synthetic.world import generate_world\n"
                 f"generate_world(sys.argv[1], users={N}, days=14, seed=5, account_data=False)\nresult = {{}}",
                 str(world))
    ws = WORK / f"collect-{N}-ws"
    subprocess.run(["rm", "-rf", str(ws)], check=True)
    base = f"http://127.0.0.1:{PORT}"
    server = subprocess.Popen([sys.executable, "-m", "tunelake.cli", "fake-spotify", "--world", str(world),
                               "--port", str(PORT), "--live", "0"], env=_env(str(ws), "", ""),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            try:
                if requests.get(f"{base}/_live/clock", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        api, accounts = f"{base}/v1/", base
        handles = [f"listener-{i:04d}" for i in range(1, N + 1)]
        t0 = time.perf_counter()
        login = in_child(LOGIN, str(ws), api, accounts, ",".join(handles))
        login_s = time.perf_counter() - t0
        requests.post(f"{base}/_live/clock", json={"speed": SPEED}, timeout=10)
        start_clock = requests.get(f"{base}/_live/clock", timeout=10).json()
        proc = subprocess.Popen([sys.executable, "-m", "tunelake.cli", "collect", "--interval", str(INTERVAL),
                                 "--no-pipeline"], env=_env(str(ws), api, accounts),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ps = psutil.Process(proc.pid)
        peak, t_start = 0.0, time.perf_counter()
        while time.perf_counter() - t_start < SECONDS and proc.poll() is None:
            try:
                peak = max(peak, ps.memory_info().rss / 2**20)
                cpu = ps.cpu_times()
            except psutil.NoSuchProcess:
                break
            time.sleep(1.0)
        wall = time.perf_counter() - t_start
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
        requests.post(f"{base}/_live/clock", json={"speed": 0}, timeout=10)
        end_clock = requests.get(f"{base}/_live/clock", timeout=10).json()
        events = [json.loads(x) for x in (ws / "logs" / "collect.jsonl").read_text().splitlines()]
        polls = [e for e in events if e["event"] == "poll"]
        collected = in_child(COUNT, str(ws), ",".join(handles))["plays"]
        lost, total_truth = 0, 0
        for h in handles:
            truth = [p["played_at_ms"] for p in requests.get(f"{base}/_live/truth", params={"user": h},
                                                              timeout=60).json()["plays"]]
            got = set(collected[h])
            if not got:
                continue
            first = min(got)  # before the first poll's 50 plays the API had nothing to give (a first-poll gap)
            still_visible = set(truth[-50:])
            window = [ms for ms in truth if ms >= first]
            total_truth += len(window)
            lost += sum(1 for ms in window if ms not in got and ms not in still_visible)
        out = {
            "listeners": N, "speed": SPEED, "interval_s": INTERVAL, "collector_wall_s": round(wall, 1),
            "simulated_hours": round((end_clock.get("now_ms", 0) - start_clock.get("now_ms", 0)) / 3.6e6, 2),
            "login_s": round(login_s, 1), "logged_in": login["logged_in"],
            "polls": len(polls), "polls_per_s": round(len(polls) / wall, 2),
            "plays_collected": sum(len(v) for v in collected.values()), "truth_plays_in_window": total_truth,
            "plays_lost": lost,
            "polls_by_kind": {"with_snapshot": sum(1 for e in polls if e.get("snapshot")),
                              "recent_only": sum(1 for e in polls if not e.get("snapshot"))},
            "collector_cpu_share": round((cpu.user + cpu.system) / wall, 3),
            "collector_peak_rss_mb": round(peak, 1),
            "errors": sum(1 for e in events if e["event"] in ("error", "transient")),
            "exit_code": proc.returncode,
            "targets": {"plays lost == 0": lost == 0, "SIGTERM → exit 0": proc.returncode == 0},
            "stderr_tail": err[-500:],
        }
        save("collect", out)
        print(json.dumps({k: out[k] for k in ("polls_per_s", "plays_lost", "collector_cpu_share",
                                              "collector_peak_rss_mb")}))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
