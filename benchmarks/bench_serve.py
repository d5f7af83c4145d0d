"""`tunelake serve` under load: N concurrent signed-in listener sessions (default 50) on the demo world, over real
HTTP (werkzeug's threaded server on loopback; each session a `requests.Session` with its session cookie and CSRF
header, the viewer applied in the metric layer). Target: dashboard callbacks p95 < 300 ms.

    python -m benchmarks.bench_serve                         # 50 sessions, demo size (120 listeners × 180 days)
    python -m benchmarks.bench_serve --users 20 --days 30 --sessions 10 --rounds 1   # a quick check

The clients run in their own processes (`--client-procs`), as browsers do, so they do not share the server's
interpreter lock. A session behaves like a browser tab: it opens each listener page in turn and asks for that
page's charts at once (up to 6 requests in flight, a browser's limit per host), then reads the page for a think
time (uniform ⅓–⁵⁄₃ × `--think` seconds, seeded: 1–5 s by default, Locust's `between(1, 5)`), over two filter
states (everything, the last month).
Three runs in one invocation, each on a fresh server: "reading" with that think time on a server whose warm-up pass
(`serve.warm`: every account's unfiltered charts for the current warehouse file) is done — the target; "after_build"
the same with nothing precomputed, as in the minutes after a build; "stress" with no think time — every session
asking again the moment it is answered, the server's throughput bound. "cold" is a session's first round, "warm"
the later ones.
Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import random
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import WORK, percentiles_ms, save

PASSWORD = "bench password 123"
TARGET_MS = 300.0
IN_FLIGHT = 6  # a browser's connections per host (HTTP/1.1)


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


def listener_pages() -> list[tuple[str, list[tuple[str, str]]]]:
    """(page, its chart callbacks) for every page a listener sees that has charts."""
    from tunelake.dashboard.pages import PAGES

    pages = [(p.key, [(c.id, c.prop) for c in p.charts if not c.admin_only]) for p in PAGES if not p.admin_only]
    return [(k, charts) for k, charts in pages if charts]


def listener_charts() -> list[tuple[str, str]]:
    return [c for _, charts in listener_pages() for c in charts]


def session(base: str, handle: str, rounds: int, states: list[dict[str, Any]], think_s: float,
            out: list[tuple[bool, float]], errors: list[str], start: Any) -> None:
    import requests
    from requests.adapters import HTTPAdapter

    s = requests.Session()
    s.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=IN_FLIGHT))
    rng = random.Random(handle)
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

    def call(first: bool, store: dict[str, Any], cid: str, prop: str) -> None:
        body = {"output": f"{cid}.{prop}", "outputs": {"id": cid, "property": prop},
                "inputs": [{"id": "filters", "property": "data", "value": store}],
                "changedPropIds": ["filters.data"], "state": []}
        t0 = time.perf_counter()
        resp = s.post(f"{base}/_dash-update-component", json=body, headers=headers, timeout=120)
        out.append((first, time.perf_counter() - t0))
        if resp.status_code != 200:
            errors.append(f"{handle} {cid}: HTTP {resp.status_code}")

    start.wait()  # every session signed in: now all start at once
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        for i in range(rounds):
            for store in states:
                for _, charts in listener_pages():
                    list(pool.map(lambda c: call(i == 0, store, *c), charts))  # noqa: B023 — used at once
                    if think_s > 0:
                        time.sleep(think_s * rng.uniform(1 / 3, 5 / 3))


def clients(base: str, who: list[str], rounds: int, states: list[dict[str, Any]], think_s: float, start: Any,
            results: Any) -> None:
    """One client process: a thread per session; sends back (first round?, seconds) per callback and errors."""
    out: list[tuple[bool, float]] = []
    errors: list[str] = []
    threads = [threading.Thread(target=session, args=(base, h, rounds, states, think_s, out, errors, start))
               for h in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((out, errors))


def load(base: str, who: list[str], rounds: int, states: list[dict[str, Any]], think_s: float,
         procs: int) -> dict[str, Any]:
    """One load run: `who` signed in from `procs` client processes, all starting at once."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(len(who) + 1), ctx.Queue()
    chunks = [who[i::procs] for i in range(procs) if who[i::procs]]
    workers = [ctx.Process(target=clients, args=(base, c, rounds, states, think_s, start, results)) for c in chunks]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    out: list[tuple[bool, float]] = []
    errors: list[str] = []
    for _ in workers:
        o, e = results.get()
        out += o
        errors += e
    wall = time.perf_counter() - t0
    for w in workers:
        w.join()
    every = [t for _, t in out]
    return {"think_s": think_s, "requests": len(every), "seconds": round(wall, 2),
            "requests_per_s": round(len(every) / wall, 1) if wall else None,
            "all": percentiles_ms(every), "cold": percentiles_ms([t for first, t in out if first]),
            "warm": percentiles_ms([t for first, t in out if not first]), "errors": errors[:10]}


def run(users: int, days: int, sessions: int, rounds: int, think_s: float, procs: int) -> dict[str, Any]:
    from werkzeug.serving import make_server

    from tunelake.serve.app import close_service, create_service
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    root = workspace(users, days)
    ws = open_workspace(root)
    con = open_warehouse(ws)
    last = con.execute("SELECT max(date) FROM agg_user_day").fetchall()[0][0]
    plays = con.execute("SELECT count(*) FROM fact_play").fetchall()[0][0]
    con.close()
    states = [{}, {"start": last.replace(day=1).isoformat(), "end": last.isoformat()}]
    everyone = handles(root)
    result: dict[str, Any] = {"listeners": len(everyone), "plays": int(plays), "sessions": min(sessions, len(everyone)),
                              "rounds": rounds, "client_processes": procs,
                              "charts_per_round": len(listener_charts()) * len(states)}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
    who = everyone[:sessions]
    # each run on a fresh server: "reading" and "stress" once its warm-up pass over every account is done (a
    # server up since the last build), "after_build" with nothing precomputed (the minutes after a new build)
    for name, think, warm in (("reading", think_s, True), ("after_build", think_s, False), ("stress", 0.0, True)):
        app = create_service(ws, warm=warm)
        if warm:
            t0 = time.perf_counter()
            app.warmer.warmed.wait(600)
            result["warm_up_pass_s"] = round(time.perf_counter() - t0, 2)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        result[name] = load(f"http://127.0.0.1:{server.server_port}", who, rounds, states, think, procs)
        server.shutdown()
        close_service(app)
    result["target_p95_ms"] = TARGET_MS
    result["meets_target"] = not result["reading"]["errors"] and result["reading"]["all"]["p95_ms"] < TARGET_MS
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=120, help="Listeners in the demo world")
    ap.add_argument("--days", type=int, default=180, help="Days of history per listener")
    ap.add_argument("--sessions", type=int, default=50, help="Concurrent signed-in sessions")
    ap.add_argument("--rounds", type=int, default=3, help="Rounds over every listener page and filter state")
    ap.add_argument("--think", type=float, default=3.0, help="Mean seconds a session reads a page before the next")
    ap.add_argument("--client-procs", type=int, default=2, help="Client processes the sessions are spread over")
    args = ap.parse_args()
    result = run(args.users, args.days, args.sessions, args.rounds, args.think, args.client_procs)
    path = save("serve", result)
    for name in ("reading", "after_build", "stress"):
        r = result[name]
        print(f"{name}: {result['sessions']} sessions · {len(r['errors'])} errors · {r['requests']} callbacks in "
              f"{r['seconds']} s ({r['requests_per_s']}/s), think {r['think_s']} s · "
              f"p95 {r['all']['p95_ms']} ms (cold {r['cold']['p95_ms']} ms, warm {r['warm'].get('p95_ms')} ms)")
    print(f"target p95 < {TARGET_MS:.0f} ms with think time: {'met' if result['meets_target'] else 'NOT met'} → {path}")


if __name__ == "__main__":
    main()
