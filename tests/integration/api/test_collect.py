"""`tunelake collect` against the fake Spotify server answering as the real one does (only the last 50 plays):
time is moved with `visible_until_ms`; what the collector keeps is compared with every play the world has had."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tunelake.collect.collector import Collector
from tunelake.collect.schedule import bounds, next_interval
from tunelake.curate import pull
from tunelake.curate.gaps import list_gaps, open_gaps, with_status
from tunelake.curate.ingest import import_paths
from tunelake.curate.listener_state import listeners_status, read_state, token_state
from tunelake.curate.plays import read_user_plays
from tunelake.dashboard import FilterState, Warehouse
from tunelake.dashboard.pages import quality as quality_page
from tunelake.errors import WorkspaceBusyError
from tunelake.lake import lock, manifest
from tunelake.pipeline import build
from tunelake.sources.spotify.auth import REFRESH_ISSUED, read_token, token_path
from tunelake.synthetic.server import FakeSpotify
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import Workspace

from .conftest import make_cfg

HANDLES = ["listener-0001", "listener-0002", "listener-0003"]
SRC = Path(__file__).parents[3] / "src"


@pytest.fixture
def live(world: Path):
    with FakeSpotify(world, recent_limit=50) as srv:
        yield srv


@pytest.fixture
def ws(tmp_path: Path, live: FakeSpotify) -> Workspace:
    cfg = make_cfg(tmp_path / "ws", live, lock_timeout_s=60)
    for h in HANDLES:
        pull.login(cfg, h, method="auto")
    return cfg


def api_ms(cfg: Workspace, handle: str) -> list[int]:
    t = read_user_plays(cfg.lake, manifest.user_key_for(handle))
    t = t.filter(pc.equal(t["source"], "api"))
    return sorted(pc.cast(t["ended_at"], "int64").to_pylist())


def truth(srv: FakeSpotify, handle: str, until: int) -> list[int]:
    return [ms for ms, _ in srv.world.listener(handle).plays if ms <= until]


def steps(srv: FakeSpotify, start: int, end: int, most: int = 40) -> list[int]:
    """Times from start to end such that no listener plays more than `most` tracks between two of them."""
    times = sorted({ms for h in HANDLES for ms, _ in srv.world.listener(h).plays if start < ms <= end})
    out, counts = [], dict.fromkeys(HANDLES, 0)
    by_time = {ms: [h for h in HANDLES if any(p[0] == ms for p in srv.world.listener(h).plays)] for ms in times}
    prev = start
    for ms in times:
        for h in by_time[ms]:
            counts[h] += 1
        if max(counts.values()) >= most:
            out.append(prev)
            counts = dict.fromkeys(HANDLES, 0)
            for h in by_time[ms]:
                counts[h] += 1
        prev = ms
    return [*out, end]


def collect_once(cfg: Workspace, **kw) -> Collector:
    c = Collector(cfg, once=True, run_pipeline=kw.pop("run_pipeline", False), seed=1, **kw)
    c.run()
    return c


def test_polls_keep_every_play_exactly(ws: Workspace, live: FakeSpotify) -> None:
    start = min(live.world.listener(h).plays[40][0] for h in HANDLES)  # nobody has 50 plays yet
    end = max(live.world.listener(h).plays[-1][0] for h in HANDLES)
    live.visible_until_ms = start
    first = collect_once(ws)
    assert first.summary.polls == len(HANDLES)
    for t in steps(live, start, end):
        live.visible_until_ms = t
        collect_once(ws)
    for h in HANDLES:
        assert api_ms(ws, h) == truth(live, h, end), h
    assert list_gaps(ws.lake) == []  # no poll ever came back full
    state = read_state(ws.lake, HANDLES[0])
    assert state.plays_collected == len(truth(live, HANDLES[0], end)) and state.polls > 3
    log = ws.root / "logs" / "collect.jsonl"
    assert log.stat().st_mode & 0o777 == 0o600
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["event"] for e in events} >= {"started", "poll", "stopped"}
    for h in HANDLES:  # tokens never reach the log
        tok = read_token(ws, h)
        assert tok["access_token"] not in log.read_text() and tok["refresh_token"] not in log.read_text()


def test_a_first_poll_with_50_plays_records_a_gap_before_them(ws: Workspace, live: FakeSpotify) -> None:
    h = HANDLES[0]
    plays = [ms for ms, _ in live.world.listener(h).plays]
    live.visible_until_ms = plays[120]
    collect_once(ws, users=[h])
    assert api_ms(ws, h) == plays[71:121]
    (g,) = list_gaps(ws.lake)
    assert (g.handle, g.start_ms, g.end_ms) == (h, None, plays[71])


def test_an_outage_is_one_gap_with_its_window_closed_by_the_export(ws: Workspace, live: FakeSpotify,
                                                                     world: Path) -> None:
    h = HANDLES[1]
    plays = [ms for ms, _ in live.world.listener(h).plays]
    assert len(plays) > 200
    live.visible_until_ms = plays[30]
    collect_once(ws, users=[h])
    assert api_ms(ws, h) == plays[:31]
    live.visible_until_ms = plays[30 + 80]  # the collector was down while 80 tracks were played
    collect_once(ws, users=[h])
    assert api_ms(ws, h) == plays[:31] + plays[61:111]  # the last 50 only: 30 plays are lost to the API
    gaps = open_gaps(ws.lake, h)
    assert len(gaps) == 1
    g = gaps[0]
    assert (g.start_ms, g.end_ms) == (plays[30], plays[61])  # from the cursor to the oldest play returned
    status = {s["handle"]: s for s in listeners_status(ws)}
    assert [x["end"] for x in status[h]["open_gaps"]] == [g.as_dict()["end"]]
    assert "Extended streaming history" in status[h]["open_gaps"][0]["fix"]
    # the warehouse and the dashboard's data-quality page show it, with the fix
    build(ws)
    with open_warehouse(ws) as con:
        rows = con.execute("SELECT user_key, epoch_ms(gap_start), epoch_ms(gap_end), status FROM meta_gap").fetchall()
    assert rows == [(manifest.user_key_for(h), plays[30], plays[61], "open")]
    page = str(quality_page.open_gaps(Warehouse(ws), FilterState()))
    assert h in page and "1 open gap" in page and "Extended streaming history" in page
    # the listener's export covers the window: importing it closes the gap by itself
    import_paths(ws, [str(world / "exports" / h)], h)
    assert open_gaps(ws.lake, h) == []
    assert [x.status for x in with_status(ws.lake, list_gaps(ws.lake, h))] == ["closed"]
    build(ws)
    with open_warehouse(ws) as con:
        assert con.execute("SELECT status FROM meta_gap").fetchall() == [("closed",)]
    assert "No open gaps" in str(quality_page.open_gaps(Warehouse(ws), FilterState()))
    total = read_user_plays(ws.lake, manifest.user_key_for(h))
    assert total.num_rows >= len(plays)  # the export's plays fill the window (API plays merged into them)


def test_a_refused_refresh_token_marks_needs_login_and_the_others_go_on(ws: Workspace, live: FakeSpotify) -> None:
    bad, good = HANDLES[0], HANDLES[2]
    t1, t2 = (min(live.world.listener(h).plays[i][0] for h in (bad, good)) for i in (20, 45))  # < 50 plays each
    live.visible_until_ms = t1
    collect_once(ws)
    token_before = token_path(ws, bad).read_bytes()
    with live.accounts.lock:  # Spotify forgets the listener's refresh tokens; their access token dies
        for k in [k for k, v in live.accounts.refresh_tokens.items() if v["handle"] == bad]:
            del live.accounts.refresh_tokens[k]
    live.accounts.expire_all()
    live.visible_until_ms = t2
    c = collect_once(ws)
    assert c.summary.needs_login == [bad]
    assert api_ms(ws, good) == truth(live, good, t2)
    state = read_state(ws.lake, bad)
    assert state.needs_login and token_state(ws, bad, state)["state"] == "needs_login"
    assert token_path(ws, bad).read_bytes() == token_before  # never deleted or rewritten
    # polled again: not retried against Spotify while the token is dead; a new login restores the listener
    n = len(live.requests)
    collect_once(ws, users=[bad])
    assert len(live.requests) == n
    time.sleep(0.01)
    pull.login(ws, bad, method="auto")
    c = collect_once(ws, users=[bad])
    assert c.summary.needs_login == [] and not read_state(ws.lake, bad).needs_login
    assert api_ms(ws, bad) == truth(live, bad, t2)


def test_an_unreachable_accounts_service_never_costs_a_token(tmp_path: Path, live: FakeSpotify) -> None:
    cfg = make_cfg(tmp_path / "ws", live)
    pull.login(cfg, HANDLES[0], method="auto")
    before = read_token(cfg, HANDLES[0])
    live.accounts.expire_all()  # the next call needs a refresh, and the accounts service is down
    down = make_cfg(tmp_path / "ws", live, spotify_accounts_url="http://127.0.0.1:9")
    c = collect_once(down, retry={"backoff_base_s": 0.01, "backoff_max_s": 0.02})
    assert c.summary.needs_login == [] and c.summary.polls == 1
    state = read_state(down.lake, HANDLES[0])
    assert not state.needs_login and state.last_error and "token is kept" in state.last_error
    assert read_token(cfg, HANDLES[0]) == before
    events = [json.loads(x) for x in (cfg.root / "logs" / "collect.jsonl").read_text().splitlines()]
    assert any(e["event"] == "transient" for e in events), events
    # the service is back: the same token refreshes and collection goes on
    c = collect_once(cfg)
    assert c.summary.plays > 0 and c.summary.needs_login == []


def test_a_429_storm_and_a_5xx_burst_lose_nothing(ws: Workspace, live: FakeSpotify) -> None:
    live.visible_until_ms = min(live.world.listener(h).plays[45][0] for h in HANDLES)  # < 50 plays each
    live.faults.add("429", count=3, retry_after=1)
    live.faults.add("503", count=2)
    t0 = time.monotonic()
    c = collect_once(ws)
    assert time.monotonic() - t0 >= 1.0  # Retry-After was honoured
    assert c.gate.holds >= 1 and c.summary.needs_login == [] and c.summary.errors == 0
    for h in HANDLES:
        assert api_ms(ws, h) == truth(live, h, live.visible_until_ms), h
        assert read_token(ws, h) is not None


def test_new_plays_run_the_pipeline_debounced(ws: Workspace, live: FakeSpotify) -> None:
    plays = live.world.listener(HANDLES[0]).plays
    live.visible_until_ms = plays[40][0]
    c = collect_once(ws, run_pipeline=True)
    assert c.summary.pipeline_runs == 1
    with open_warehouse(ws) as con:
        n = con.execute("SELECT count(*) FROM fact_play WHERE source = 'api'").fetchone()[0]
    assert n == sum(len(api_ms(ws, h)) for h in HANDLES)
    # within pipeline_min_interval_s of the last run, new plays wait for the next window
    live.visible_until_ms = plays[60][0]
    c = Collector(ws, run_pipeline=True, seed=2)
    c._last_pipeline = c.clock()
    c._dirty = True
    c._pipeline()
    assert c.summary.pipeline_runs == 0 and c._dirty
    c._last_pipeline -= ws.settings.pipeline_min_interval_s
    c._pipeline()
    assert c.summary.pipeline_runs == 1 and not c._dirty


def test_one_collector_per_workspace(ws: Workspace) -> None:
    with lock.collector_lock(ws.root, "test"), pytest.raises(WorkspaceBusyError, match="already running"):
        Collector(ws, once=True).run()


def test_schedule_adapts_within_bounds() -> None:
    rng = random.Random(3)
    lo, hi = bounds(600)
    assert (lo, hi) == (135.0, 2640.0)
    busy = next_interval(600, 600, 45, rng)
    idle = next_interval(600, 600, 0, rng)
    assert 270 <= busy <= 330 and 810 <= idle <= 990
    cur = 600.0
    for _ in range(30):
        cur = next_interval(600, cur, 0, rng)
        assert lo <= cur <= hi
    assert cur >= 2400 * 0.9 / 1.1  # idle listeners settle at the longest interval, no further


def test_refresh_token_age_warns_14_days_before_6_months(ws: Workspace) -> None:
    h = HANDLES[0]
    tok = read_token(ws, h)
    assert tok[REFRESH_ISSUED] <= time.time()
    state = read_state(ws.lake, h)
    issued = tok[REFRESH_ISSUED]
    assert token_state(ws, h, state, now=issued + 100 * 86400)["state"] == "ok"
    warn = token_state(ws, h, state, now=issued + 170 * 86400)
    assert warn["state"] == "expiring" and "12 days" in warn["message"]
    assert token_state(ws, h, state, now=issued + 183 * 86400)["state"] == "expired"
    assert (token_path(ws, h).stat().st_mode & 0o777) == 0o600
    # the collector says so in its log when it polls a listener whose refresh token is about to expire
    c = Collector(ws, users=[h], once=True, run_pipeline=False, clock=lambda: issued + 170 * 86400)
    c.run()
    events = [json.loads(x) for x in (ws.root / "logs" / "collect.jsonl").read_text().splitlines()]
    assert [e["handle"] for e in events if e["event"] == "token_expiring"] == [h]


def _collector(cfg: Workspace, srv: FakeSpotify, interval: str = "1") -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SRC), "TUNELAKE_HOME": str(cfg.root),
           "TUNELAKE_SPOTIFY_API_URL": srv.api_url, "TUNELAKE_SPOTIFY_ACCOUNTS_URL": srv.accounts_url,
           "TUNELAKE_SPOTIFY_CLIENT_ID": "tunelake-test", "TUNELAKE_PIPELINE_MIN_INTERVAL_S": "3600"}
    return subprocess.Popen([sys.executable, "-m", "tunelake.cli", "collect", "--interval", interval,
                             "--no-pipeline"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_at_random_moments_loses_and_duplicates_nothing(ws: Workspace, live: FakeSpotify) -> None:
    rng = random.Random(5)
    start = min(live.world.listener(h).plays[10][0] for h in HANDLES)
    end = min(live.world.listener(h).plays[min(len(live.world.listener(h).plays) - 1, 200)][0] for h in HANDLES)
    # at most 12 plays per 1.6 s step: a listener idle for a while is polled every ≤ 4.4 s (4 × --interval, +10 %),
    # so at most 3 steps (36 plays) pass between two of its polls — never 50
    times = steps(live, start, end, most=12)
    live.visible_until_ms = start
    proc = _collector(ws, live)
    kills = 0
    for i, t in enumerate(times):
        time.sleep(1.6)
        live.visible_until_ms = t
        if kills < 5 and i % max(1, len(times) // 6) == 1:
            time.sleep(rng.uniform(0.0, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = _collector(ws, live)
    time.sleep(3.5)  # a last poll after the last step
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert kills == 5
    for h in HANDLES:
        got = api_ms(ws, h)
        assert len(got) == len(set(got)), f"{h}: duplicates"
        assert got == truth(live, h, end), h


LIVE5 = ["listener-0001", "listener-0002", "listener-0003", "listener-0004", "listener-0005"]


def test_a_simulated_week_live_collected_exactly_with_one_outage_gap(tmp_path: Path, world: Path) -> None:
    """Against `fake-spotify --live` (over HTTP, the clock moved by the test): 5 listeners, a simulated week. The
    plays collected equal the server's ground truth exactly, except during one planted outage (one listener plays
    more than 50 tracks while the collector is off): that is exactly one gap, with the right window, and importing
    the listener's export closes it and fills the lake with exactly what happened."""
    with FakeSpotify(world, live=0) as srv, FakeSpotify(world, live=0) as oracle:
        start = srv.now_ms()
        end = start + 7 * 86_400_000
        oracle.live_clock(now_ms=end)  # the same world and clock give the same plays: the week, known in advance
        week = {h: [ms for ms, _ in oracle.truth(h) if ms > start] for h in LIVE5}
        cfg = make_cfg(tmp_path / "ws", srv)
        for h in LIVE5:
            pull.login(cfg, h, method="auto")
        first = collect_once(cfg)  # the world's last 50 plays of each listener (and a first-poll gap each)
        assert first.summary.polls == 5
        before = {h: set(api_ms(cfg, h)) for h in LIVE5}
        outage_from = start + 2 * 86_400_000  # the collector is off for the busiest listener from day 2 ...
        out = max(LIVE5, key=lambda h: sum(1 for ms in week[h] if ms > outage_from))
        assert sum(1 for ms in week[out] if ms > outage_from) > 100, {h: len(w) for h, w in week.items()}
        after_outage = next(ms for i, ms in enumerate(week[out]) if ms > outage_from
                            and sum(1 for x in week[out][:i + 1] if x > outage_from) > 80)  # ... until 80+ plays
        times, counts, t = [], dict.fromkeys(LIVE5, 0), start
        for ms in sorted({ms for h in LIVE5 for ms in week[h]}):
            hit = [h for h in LIVE5 if ms in week[h] and not (h == out and outage_from < ms <= after_outage)]
            if any(counts[h] + 1 > 40 for h in hit):
                times.append(t)
                counts = dict.fromkeys(LIVE5, 0)
            for h in hit:
                counts[h] += 1
            t = ms
        times.append(end)
        for t in times:
            srv.live_clock(now_ms=t)
            users = [h for h in LIVE5 if not (h == out and outage_from < t < after_outage)]
            collect_once(cfg, users=users)
        srv.live_clock(now_ms=end)
        collect_once(cfg)
        for h in LIVE5:
            got = api_ms(cfg, h)
            assert len(got) == len(set(got))
            expected = sorted(before[h] | set(week[h]))
            if h != out:
                assert got == expected, h
        # the outage: plays between the last poll before it and the 50 the API still had are lost
        last_before = max(ms for ms in week[out] if ms <= max(x for x in times if x <= outage_from))
        back = min(x for x in times if x >= after_outage)  # the first poll after the outage
        visible_after = [ms for ms in week[out] if ms <= back][-50:]
        lost = [ms for ms in week[out] if last_before < ms < visible_after[0]]
        assert lost and set(api_ms(cfg, out)) == set(sorted(before[out] | set(week[out]))) - set(lost)
        gaps = [g for g in open_gaps(cfg.lake, out) if g.start_ms is not None]
        assert [(g.start_ms, g.end_ms) for g in gaps] == [(last_before, visible_after[0])]
        # the export of the live days closes it, and the lake then holds every play once
        folder = tmp_path / "export" / "Spotify Extended Streaming History"
        folder.mkdir(parents=True)
        (folder / "Streaming_History_Audio_2026_live.json").write_text(json.dumps(srv.live_export(out)))
        import_paths(cfg, [str(folder.parent)], out)
        assert [g for g in open_gaps(cfg.lake, out) if g.start_ms is not None] == []
        plays = read_user_plays(cfg.lake, manifest.user_key_for(out))
        music = plays.filter(pc.equal(plays["content_type"], "track"))
        ends = sorted(pc.cast(music["ended_at"], "int64").to_pylist())
        week_ends = [e for e in ends if start < e <= end]
        assert len(week_ends) == len(week[out])  # every play of the week once: API and export plays merged
