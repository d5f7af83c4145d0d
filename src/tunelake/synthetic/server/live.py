"""Which plays a request sees, and live mode's simulated clock and `/_live` admin endpoints.

A `Timeline` answers "what has this listener played so far, and where does `top` end?". The static one is the
world as generated (minus what `visible_until_ms` hides); the live one adds the plays of
`synthetic.live.LiveListening` up to the simulated now, which runs `speed` times faster than the wall clock from
the world's end. Tests do not sleep: `POST /_live/clock` sets or advances simulated time (never backwards, as a
real service's history never shrinks), and `GET /_live/truth?user=NAME` returns every play so far, which is what
a collector's results are compared with. `GET /_live/export?user=NAME` is the listener's export of the live days
(Extended Streaming History rows), the file that fills a gap the API can no longer.
"""

from __future__ import annotations

import bisect
import threading
import time
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from tunelake.synthetic.live import LiveHistory, LiveListening
from tunelake.synthetic.server.responses import ApiError, json_response
from tunelake.synthetic.server.world_view import World, iso_ms, parse_ts


class SimClock:
    """Simulated time: `start` plus `speed` × the wall seconds since it was last set, in epoch milliseconds."""

    def __init__(self, start_ms: int, speed: float, wall: Any = time.monotonic) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 stops the clock)")
        self._wall = wall
        self._lock = threading.Lock()
        self._start_ms = start_ms
        self._anchor_ms, self._anchor_wall, self.speed = float(start_ms), wall(), float(speed)
        self._moved = False

    def start(self) -> None:
        """Begin at `start_ms` now (the server is up), unless the clock has already been set or started."""
        with self._lock:
            if not self._moved:
                self._anchor_ms, self._anchor_wall, self._moved = float(self._start_ms), self._wall(), True

    def now_ms(self) -> int:
        with self._lock:
            return int(self._anchor_ms + (self._wall() - self._anchor_wall) * 1000 * self.speed)

    def set(self, *, now_ms: int | None = None, advance_s: float | None = None, speed: float | None = None) -> int:
        """Move the clock to `now_ms`, or on by `advance_s` simulated seconds, and/or change its speed."""
        if speed is not None and speed < 0:
            raise ValueError("speed must be >= 0 (0 stops the clock)")
        if advance_s is not None and advance_s < 0:
            raise ValueError("advance must be >= 0: simulated time never goes back")
        with self._lock:
            wall = self._wall()
            current = self._anchor_ms + (wall - self._anchor_wall) * 1000 * self.speed
            target = current
            if now_ms is not None:
                if now_ms < current:
                    raise ValueError(f"cannot set the clock back to {iso_ms(now_ms)} (now {iso_ms(int(current))})")
                target = float(now_ms)
            if advance_s is not None:
                target += advance_s * 1000
            self._anchor_ms, self._anchor_wall, self._moved = target, wall, True
            if speed is not None:
                self.speed = float(speed)
            return int(target)


class Timeline:
    """The world as generated: every play, or those up to `visible_until_ms` (which tests move by hand)."""

    live = False

    def __init__(self, world: World) -> None:
        self.world = world
        self.visible_until_ms: int | None = None

    def plays(self, handle: str) -> list[tuple[int, str]]:
        plays = self.world.listener(handle).plays
        if self.visible_until_ms is not None:
            plays = plays[: bisect.bisect_right(plays, (self.visible_until_ms, "\uffff"))]
        return plays

    def top_plays(self, handle: str) -> tuple[list[tuple[int, str]], datetime]:
        """What `top` counts, and the instant its time ranges end: the whole world, up to its end date."""
        return self.world.listener(handle).plays, self.world.end


class LiveTimeline(Timeline):
    """The world, then the listeners go on listening in simulated time (`clock`); plays after now are unseen."""

    live = True

    def __init__(self, world: World, speed: float, start_ms: int | None = None) -> None:
        super().__init__(world)
        self.listening = LiveListening.from_world(world.root)
        self.listening.catalog  # noqa: B018 - build it now, not during the first request
        self.clock = SimClock(int(world.end.timestamp() * 1000) if start_ms is None else start_ms, speed)

    def history(self, handle: str) -> LiveHistory:
        """The listener's live history, seeded with the world's plays of tracks the API can show."""
        known = self.world.tracks
        return self.listening.history(handle, lambda: [p for p in self.world.listener(handle).plays if p[1] in known])

    def _history(self, handle: str, now_ms: int | None = None) -> list[tuple[int, str]]:
        return self.history(handle).until(self.clock.now_ms() if now_ms is None else now_ms)

    def plays(self, handle: str, now_ms: int | None = None) -> list[tuple[int, str]]:
        """The listener's plays up to `now_ms` (default: the clock's now), oldest first."""
        plays = self._history(handle, now_ms)
        if self.visible_until_ms is not None:
            plays = plays[: bisect.bisect_right(plays, (self.visible_until_ms, "\uffff"))]
        return plays

    def top_plays(self, handle: str) -> tuple[list[tuple[int, str]], datetime]:
        """Top items move with the listener: every play so far, time ranges ending now."""
        return self._history(handle), datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC)

    def export_rows(self, handle: str, now_ms: int | None = None) -> list[dict[str, Any]]:
        """The live plays so far as Extended Streaming History rows (the world's export files hold the rest)."""
        return self.history(handle).export_rows(self.clock.now_ms() if now_ms is None else now_ms)


def _clock_state(tl: LiveTimeline) -> dict[str, Any]:
    now = tl.clock.now_ms()
    return {"now": iso_ms(now), "now_ms": now, "speed": tl.clock.speed, "world_end": iso_ms(
        int(tl.world.end.timestamp() * 1000))}


def _as_ms(value: Any) -> int:
    """An instant from JSON: epoch milliseconds, or an ISO 8601 time (naive means UTC)."""
    if isinstance(value, bool):
        raise ValueError("now must be epoch milliseconds or an ISO 8601 time")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        return int(parse_ts(value).timestamp() * 1000)
    raise ValueError("now must be epoch milliseconds or an ISO 8601 time")


def admin(req: Request, rest: str, timeline: Timeline) -> Response:
    """`/_live/clock` (GET: read; POST `{"now": …}`, `{"advance": seconds}`, `{"speed": x}`) and
    `/_live/truth?user=NAME[&after=MS]`; 404 unless the server runs in live mode."""
    if not isinstance(timeline, LiveTimeline):
        raise ApiError(404, "live mode is off: start the server with --live SPEED")
    what = rest.strip("/")
    if what == "clock" and req.method == "POST":
        body = req.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not {"now", "advance", "speed"} & body.keys():
            raise ApiError(400, 'bad clock change: send {"now": ms|iso}, {"advance": seconds} or {"speed": x}')
        try:
            timeline.clock.set(
                now_ms=_as_ms(body["now"]) if "now" in body else None,
                advance_s=float(body["advance"]) if "advance" in body else None,
                speed=float(body["speed"]) if "speed" in body else None,
            )
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"bad clock change: {exc}") from None
        return json_response(_clock_state(timeline))
    if what == "clock" and req.method == "GET":
        return json_response(_clock_state(timeline))
    if what == "truth" and req.method == "GET":
        return json_response(truth(req, timeline))
    if what == "export" and req.method == "GET":
        user = req.args.get("user", "")
        if user not in timeline.world.handles:
            raise ApiError(404, f"unknown listener {user!r}")
        rows = timeline.export_rows(user)
        years = sorted({r["ts"][:4] for r in rows}) or [iso_ms(timeline.clock.now_ms())[:4]]
        label = years[0] if len(years) == 1 else f"{years[0]}-{years[-1]}"
        response = json_response(rows)
        response.headers["Content-Disposition"] = f'attachment; filename="Streaming_History_Audio_{label}_live.json"'
        return response
    raise ApiError(404, "unknown live endpoint: use /_live/clock, /_live/truth or /_live/export")


def truth(req: Request, timeline: LiveTimeline) -> dict[str, Any]:
    """Every play of a listener so far (or after `after` ms): what a perfect collector would have collected."""
    user = req.args.get("user", "")
    if user not in timeline.world.handles:
        raise ApiError(404, f"unknown listener {user!r}")
    try:
        after = int(req.args["after"]) if req.args.get("after") else None
    except ValueError:
        raise ApiError(400, "after must be epoch milliseconds") from None
    now = timeline.clock.now_ms()
    plays = timeline.plays(user, now)
    if after is not None:
        plays = plays[bisect.bisect_right(plays, (after, "\uffff")) :]
    return {
        "user": user,
        "now": iso_ms(now),
        "now_ms": now,
        "count": len(plays),
        "plays": [{"played_at": iso_ms(ms), "played_at_ms": ms, "track_id": tid} for ms, tid in plays],
    }
