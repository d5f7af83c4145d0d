"""`tunelake serve` under load: N concurrent signed-in listener sessions (default 50) on the demo world, each
calling every chart callback of the listener pages over real HTTP (werkzeug's threaded server on loopback, one
`requests.Session` per listener: session cookie, CSRF header, the viewer applied in the metric layer).
Target: dashboard callbacks p95 < 300 ms.

    python -m benchmarks.bench_serve                         # 50 sessions, demo size (120 listeners × 180 days)
    python -m benchmarks.bench_serve --users 20 --days 30 --sessions 10 --rounds 1   # a quick check

Each session runs `--rounds` rounds over two filter states (everything, the last month); the first round of a
session is what an uncached visitor waits for ("cold"), later rounds may be answered from the chart cache.
Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import WORK, percentiles_ms, save

PASSWORD = "bench password 123"
TARGET_MS = 300.0


def workspace(users: int, days: int) -> Path:
    """A demo workspace of this size with one listener account per listener (built once, then reused)."""
    from tunelake.cli.demo import run_demo
    from tunelake.serve import accounts
    from tunelake.warehouse.store import read_pointer
    from tunelake.workspace import open_workspace

    root = WORK / f"serve-demo-{users}x{days}"
    ws = open_workspace(root)
    if read_pointer(ws) is None:
        shutil.rmtree(root, ignore_errors=True)
        run_demo(open_workspace(root), users=users, days=days, seed=42)
    (root / "tunelake.toml").write_text('serve_login_rate = "10000 per minute"\n'
                                        'serve_login_rate_per_name = "10000 per hour"\n')
    ws = open_workspace(root)
    known = {a.name for a in accounts.list_accounts(ws)}
    for handle in handles(root):
        if handle not in known:
            accounts.add_account(ws, handle, "listener", PASSWORD)
    return root


def handles(root: Path) -> list[str]:
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    con = open_warehouse(open_workspace(root))
    try:
        return [h for (h,) in con.execute("SELECT handle FROM dim_user ORDER BY handle").fetchall()]
    finally:
        con.close()


def listener_charts() -> list[tuple[str, str]]:
    from tunelake.dashboard.pages import PAGES

    return [(c.id, c.prop) for p in PAGES if not p.admin_only for c in p.charts]


def session(base: str, handle: str, rounds: int, states: list[dict[str, Any]], out: list[tuple[bool, float]],
            errors: list[str], start: threading.Barrier) -> None:
    import requests

    s = requests.Session()
    html = s.get(f"{base}/login", timeout=60).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    r = s.post(f"{base}/login", data={"name": handle, "password": PASSWORD, "csrf_token": token},
               allow_redirects=False, timeout=60)
    if r.status_code != 302:
        errors.append(f"{handle}: sign-in HTTP {r.status_code}")
        start.wait()
        return
    s.get(f"{base}/_dash-layout", timeout=60)
    headers = {"X-CSRFToken": s.cookies.get("_csrf_token")}
    start.wait()  # every session signed in: now all call at once
    for i in range(rounds):
        for store in states:
            for cid, prop in listener_charts():
                body = {"output": f"{cid}.{prop}", "outputs": {"id": cid, "property": prop},
                        "inputs": [{"id": "filters", "property": "data", "value": store}],
                        "changedPropIds": ["filters.data"], "state": []}
                t0 = time.perf_counter()
                resp = s.post(f"{base}/_dash-update-component", json=body, headers=headers, timeout=120)
                out.append((i == 0, time.perf_counter() - t0))
                if resp.status_code != 200:
                    errors.append(f"{handle} {cid}: HTTP {resp.status_code}")


def run(users: int, days: int, sessions: int, rounds: int) -> dict[str, Any]:
    from werkzeug.serving import make_server

    from tunelake.dashboard.app import close_app
    from tunelake.serve.app import create_service
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    root = workspace(users, days)
    ws = open_workspace(root)
    con = open_warehouse(ws)
    last = con.execute("SELECT max(date) FROM agg_user_day").fetchall()[0][0]
    plays = con.execute("SELECT count(*) FROM fact_play").fetchall()[0][0]
    con.close()
    states = [{}, {"start": last.replace(day=1).isoformat(), "end": last.isoformat()}]
    app = create_service(ws)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    who = handles(root)[:sessions]
    out: list[tuple[bool, float]] = []
    errors: list[str] = []
    barrier = threading.Barrier(len(who) + 1)
    threads = [threading.Thread(target=session, args=(base, h, rounds, states, out, errors, barrier)) for h in who]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    server.shutdown()
    close_app(app.dash)
    every = [t for _, t in out]
    cold = [t for first, t in out if first]
    warm = [t for first, t in out if not first]
    result = {"listeners": len(handles(root)), "plays": int(plays), "sessions": len(who), "rounds": rounds,
              "charts_per_round": len(listener_charts()) * len(states), "requests": len(every),
              "seconds": round(wall, 2), "requests_per_s": round(len(every) / wall, 1) if wall else None,
              "all": percentiles_ms(every), "cold": percentiles_ms(cold),
              "warm": percentiles_ms(warm), "errors": errors[:10],
              "target_p95_ms": TARGET_MS}
    result["meets_target"] = not errors and result["all"]["p95_ms"] < TARGET_MS
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=120, help="Listeners in the demo world")
    ap.add_argument("--days", type=int, default=180, help="Days of history per listener")
    ap.add_argument("--sessions", type=int, default=50, help="Concurrent signed-in sessions")
    ap.add_argument("--rounds", type=int, default=3, help="Rounds over every chart and filter state per session")
    args = ap.parse_args()
    result = run(args.users, args.days, args.sessions, args.rounds)
    path = save("serve", result)
    print(f"{result['sessions']} sessions · {result['requests']} callbacks in {result['seconds']} s · "
          f"p95 {result['all']['p95_ms']} ms (cold {result['cold']['p95_ms']} ms, "
          f"warm {result['warm'].get('p95_ms')} ms) · "
          f"target {TARGET_MS:.0f} ms {'met' if result['meets_target'] else 'NOT met'} · errors {len(result['errors'])}"
          f" → {path}")


if __name__ == "__main__":
    main()
