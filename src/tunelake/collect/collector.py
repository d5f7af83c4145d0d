"""`tunelake collect`: one long-running process that keeps every connected listener's history complete.

Per listener it polls recently-played with the `after` cursor on an adaptive schedule (`collect.schedule`), takes
daily snapshots (profile, top items, saved tracks, playlists, enrichment), and records a gap when a poll shows that
plays may have fallen off Spotify's 50-play horizon (`curate.gaps`). Each poll is an ordinary `curate.pull.pull`
under the workspace lock: a page and the cursor past it are one commit, so a kill at any moment loses nothing and
duplicates nothing. One app's rate limit is shared: a 429 holds every listener's calls (`RateGate`).

Tokens: only Spotify refusing the refresh token (`invalid_grant`) marks a listener `needs_login`; 5xx, time-outs
and connection errors are transient and never touch a token. After new plays land the pipeline runs through the
same runner as `tunelake run`, at most once per `pipeline_min_interval_s`.

A scheduler library (APScheduler) was not used: what is scheduled is one function per listener whose next time
depends on the last result, plus one debounced job — a priority of due times and a thread pool say it in less code
than adapting a trigger API to it, and the loop must also coordinate with the workspace lock and shutdown.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tunelake.collect.events import EventLog
from tunelake.collect.schedule import next_interval
from tunelake.curate.listener_state import ListenerState, connected_handles, read_state, token_state, write_state
from tunelake.curate.pull import WHAT_ALL, pull
from tunelake.errors import SourceError, TokenRevokedError, TransientSourceError, TunelakeError
from tunelake.lake import lock
from tunelake.sources.spotify.auth import token_path
from tunelake.sources.spotify.client import RateGate, RetryPolicy
from tunelake.workspace import Workspace

log = logging.getLogger("tunelake")
SNAPSHOT = [w for w in WHAT_ALL if w != "recent"]


@dataclass
class CollectSummary:
    polls: int = 0
    plays: int = 0
    errors: int = 0
    pipeline_runs: int = 0
    gaps: int = 0
    needs_login: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Collector:
    """The collection loop. `clock` is wall time (seconds); tests pass their own clock and `sleep`."""

    def __init__(self, ws: Workspace, *, users: Iterable[str] | None = None, interval_s: float | None = None,
                 once: bool = False, max_cycles: int | None = None, run_pipeline: bool = True,
                 clock: Callable[[], float] = time.time, seed: int | None = None,
                 retry: dict[str, float] | None = None) -> None:
        self.ws = ws
        self.users = list(users) if users else None
        self.base = float(interval_s or ws.settings.collect_interval_s)
        self.once = once
        self.max_cycles = max_cycles
        self.run_pipeline = run_pipeline
        self.clock = clock
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.signalled = False
        self.retry = dict(retry or {})  # RetryPolicy fields (tests shorten the back-off)
        self.gate = RateGate()
        self.summary = CollectSummary()
        self.events = EventLog(ws.root / "logs" / "collect.jsonl")
        self._due: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._running: dict[str, Future] = {}
        self._dirty = False
        self._last_pipeline = 0.0
        self._mutex = threading.Lock()
        self.workers = max(1, int(ws.settings.collect_concurrency))

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish the polls in flight (each is whole commits), then return (exit 0)."""
        def handler(signum: int, frame: Any) -> None:
            self.events.write("stopping", signal=signal.Signals(signum).name)
            self.signalled = True
            self.stop.set()
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> CollectSummary:
        with lock.collector_lock(self.ws.root, "tunelake collect"):
            self.events.write("started", listeners=len(self.handles()), interval_s=self.base, once=self.once)
            with ThreadPoolExecutor(self.workers, thread_name_prefix="collect") as pool:
                try:
                    self._loop(pool)
                finally:
                    self.stop.set()
                    for fut in list(self._running.values()):
                        fut.result() if not fut.cancelled() else None
            if self._dirty and self.run_pipeline and self.once and not self.signalled:
                self._pipeline(force_now=True)  # --once: what came in is on the dashboard when it exits
            self.events.write("stopped", **self.summary.as_dict())
        return self.summary

    def handles(self) -> list[str]:
        return sorted(self.users) if self.users is not None else connected_handles(self.ws)

    # --- the loop -----------------------------------------------------------------------------------------------
    def _loop(self, pool: ThreadPoolExecutor) -> None:
        polled_once: set[str] = set()
        cycles = 0
        while not self.stop.is_set():
            now = self.clock()
            for handle in self.handles():
                if handle not in self._due:
                    self._due[handle] = self._first_due(handle, now)
            self._reap()
            for handle, due in sorted(self._due.items(), key=lambda kv: kv[1]):
                if self.stop.is_set():
                    break
                if handle in self._running or (self.once and handle in polled_once):
                    continue
                if len(self._running) >= self.workers:
                    break  # no queue: what waits is ordered by due time here, and a stop drops nothing in flight
                if due <= now or (self.once and handle not in polled_once):
                    polled_once.add(handle)
                    self._running[handle] = pool.submit(self._poll, handle)
            if self.run_pipeline and self._dirty and not self._running:
                self._pipeline()
            if self.once and set(self.handles()) <= polled_once and not self._running:
                break
            cycles += 1
            if self.max_cycles is not None and cycles >= self.max_cycles and not self._running:
                break
            if len(self._running) >= self.workers:
                self.stop.wait(0.05)  # every worker is busy: look again when one may have finished
                continue
            upcoming = [d for h, d in self._due.items() if h not in self._running]
            wait = min([max(0.0, d - self.clock()) for d in upcoming] + [1.0])
            self.stop.wait(min(wait, 0.2) if self._running else wait)

    def _reap(self) -> None:
        for handle, fut in list(self._running.items()):
            if fut.done():
                del self._running[handle]
                exc = fut.exception()
                if exc is not None:  # a bug, not a source error (those are handled in _poll)
                    self.summary.errors += 1
                    self.events.write("error", handle=handle, error=f"{type(exc).__name__}: {exc}")

    def _first_due(self, handle: str, now: float) -> float:
        state = read_state(self.ws.lake, handle)
        if state.next_poll_at:
            try:
                return min(datetime.fromisoformat(state.next_poll_at).timestamp(), now + self.base)
            except ValueError:
                pass
        return now

    # --- one poll -----------------------------------------------------------------------------------------------
    def _policy(self) -> RetryPolicy:
        return RetryPolicy(retry_after_cap_s=self.ws.settings.retry_after_cap_s, gate=self.gate,
                           sleep=lambda s: self.stop.wait(s), **self.retry)  # type: ignore[arg-type]

    def _poll(self, handle: str) -> None:
        state = read_state(self.ws.lake, handle)
        now = self.clock()
        if state.needs_login and not self._relogged(handle, state):
            self._schedule(handle, state, 0, now, error=state.last_error)
            return
        state.needs_login, state.needs_login_since = False, None
        token = token_state(self.ws, handle, state, now)
        if token["state"] in ("expiring", "expired"):  # Spotify's 6-month refresh-token lifetime
            self.events.write("token_" + token["state"], handle=handle, message=token["message"])
        what = ["recent"]
        if not state.last_snapshot_at or (now - datetime.fromisoformat(state.last_snapshot_at).timestamp()
                                          >= self.ws.settings.collect_snapshot_interval_s):
            what += SNAPSHOT
        plays, error = 0, None
        try:
            result = pull(self.ws, handle, what, policy=self._policy())
            plays = result.plays_new
            self.summary.gaps += len(result.gaps)
            for g in result.gaps:
                self.events.write("gap", handle=handle, start=g["start"], end=g["end"])
            if len(what) > 1:
                state.last_snapshot_at = _iso(now)
            self.events.write("poll", handle=handle, plays=plays, read=result.plays_read, pages=result.pages,
                              snapshot=len(what) > 1, calls=result.calls.get("calls", 0))
        except TokenRevokedError as exc:
            error = exc.one_line()
            state.needs_login, state.needs_login_since = True, _iso(now)
            with self._mutex:
                self.summary.needs_login.append(handle)
            self.events.write("needs_login", handle=handle, error=error)
        except TransientSourceError as exc:  # rate limit beyond the cap, 5xx bursts, network: the token is kept
            error = exc.one_line()
            self.events.write("transient", handle=handle, error=error)
        except (SourceError, TunelakeError) as exc:
            error = exc.one_line()
            with self._mutex:
                self.summary.errors += 1
            self.events.write("error", handle=handle, error=error)
        with self._mutex:
            self.summary.polls += 1
            self.summary.plays += plays
            if plays:
                self._dirty = True
        self._schedule(handle, state, plays, now, error=error)

    def _relogged(self, handle: str, state: ListenerState) -> bool:
        """`tunelake auth login` wrote a new token since Spotify refused the old one."""
        try:
            since = datetime.fromisoformat(state.needs_login_since or "").timestamp()
            return token_path(self.ws, handle).stat().st_mtime > since
        except (ValueError, FileNotFoundError):
            return False

    def _schedule(self, handle: str, state: ListenerState, plays: int, now: float, error: str | None) -> None:
        interval = next_interval(self.base, self._interval.get(handle), plays, self.rng)
        self._interval[handle] = interval
        self._due[handle] = now + interval
        state.last_poll_at = _iso(now)
        state.next_poll_at = _iso(now + interval)
        state.interval_s = round(interval, 1)
        state.polls += 1
        state.plays_collected += plays
        state.last_poll_plays = plays
        state.last_error = error
        with self.ws.writing(command=f"collect: state of {handle}"), self.ws.lake.transaction(f"collect {handle}"):
            write_state(self.ws.lake, state)

    # --- the pipeline follows the data ------------------------------------------------------------------------
    def _pipeline(self, force_now: bool = False) -> None:
        now = self.clock()
        if not force_now and now - self._last_pipeline < self.ws.settings.pipeline_min_interval_s:
            return
        from tunelake.pipeline import run

        self._dirty = False
        self._last_pipeline = now
        t0 = time.perf_counter()
        try:
            info = run(self.ws, report=False)
            self.summary.pipeline_runs += 1
            self.events.write("pipeline", run_id=info.run_id, status=info.status,
                              seconds=round(time.perf_counter() - t0, 2))
        except TunelakeError as exc:
            self.summary.errors += 1
            self.events.write("pipeline_failed", error=exc.one_line())
