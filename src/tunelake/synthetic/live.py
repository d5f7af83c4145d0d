"""Live listening: the synthetic listeners go on listening after the world's end, one simulated day at a time.

The fake Spotify server's live mode (`tunelake fake-spotify --live SPEED`) needs new plays to keep arriving, so
that recently-played moves and a collector can be tested against plays it has not seen yet. A live day is drawn
from the listener's own taste (the same `listeners.taste` the exports were written from) with a generator seeded
by `(seed, listener, local date)`, and its first session starts at least 31 minutes after the listener's previous
play. So the plays of a day depend only on the world and the days before it, never on when, or how often,
anyone asks: two servers with the same world and the same simulated time show the same plays.

Only music reaches the Web API view (recently-played has no podcasts), so a live play is a
`(played_at ms, track id)` pair, like `server.world_view.Listener.plays`. `played_at` is the end of playback
(`floor(end × 1000)`), as in the exports, where `ts` is the same instant to the second. `export_rows` writes the
live days (podcasts included) as Extended Streaming History rows, the export a listener would download: importing
it fills whatever a collector missed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from tunelake.synthetic.catalog_gen import Catalog, generate_catalog
from tunelake.synthetic.exports import NEW_KEYS, CatLookup, play_columns
from tunelake.synthetic.listeners import Listener, Plays, Taste, make_listener, simulate_days, taste

LIVE_STREAM = 909  # the random stream of live days (`[seed, LIVE_STREAM, listener index, date ordinal]`)


def listener_index(handle: str) -> int:
    """`listener-0001` → 0: the index the world generator simulated that listener from."""
    prefix, _, number = handle.rpartition("-")
    if prefix != "listener" or not number.isdigit() or int(number) < 1:
        raise ValueError(f"{handle!r} is not a synthetic listener handle (listener-NNNN)")
    return int(number) - 1


class LiveHistory:
    """One listener's plays: those of the world, then live days, generated on demand up to a given instant.

    `plays` only ever grows at its end, so a caller may keep an index into it. Thread-safe: the server asks from
    one thread per request.
    """

    def __init__(self, model: LiveListening, handle: str, world_plays: list[tuple[int, str]]) -> None:
        self.model = model
        self.handle = handle
        self.listener: Listener = make_listener(listener_index(handle), model.seed)
        self.tz = ZoneInfo(self.listener.timezone)
        self.plays: list[tuple[int, str]] = list(world_plays)
        self.next_day = model.end_date + dt.timedelta(days=1)  # the first local date the world did not simulate
        self._last_end_s = self.plays[-1][0] / 1000 if self.plays else None
        self.days: list[tuple[Plays, np.ndarray]] = []  # every live day so far (podcasts too), with end ms
        self._taste: Taste | None = None
        self._lock = threading.Lock()

    def day_start_ms(self, day: dt.date) -> int:
        """Local midnight of `day` in the listener's timezone, in UTC milliseconds: no play of that day is earlier."""
        local = dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return int(local.timestamp() * 1000)

    def until(self, now_ms: int) -> list[tuple[int, str]]:
        """Every play that has ended at or before `now_ms`, oldest first."""
        with self._lock:
            while self.day_start_ms(self.next_day) <= now_ms:
                self._add_day(self.next_day)
                self.next_day += dt.timedelta(days=1)
            return self.plays[: bisect.bisect_right(self.plays, (now_ms, "\uffff"))]

    def _add_day(self, day: dt.date) -> None:
        lis, cat = self.listener, self.model.catalog
        if self._taste is None:
            self._taste = taste(lis, cat, np.random.default_rng([self.model.seed, 202, lis.index]))
        t = Taste(dict(self._taste.params), self._taste.pool, self._taste.pool_w, self._taste.fav_tracks,
                  self._taste.fav_w)  # simulate_days writes the day's devices into params: keep the taste clean
        rng = np.random.default_rng([self.model.seed, LIVE_STREAM, lis.index, day.toordinal()])
        day_plays = simulate_days(lis, t, cat, rng, day, 1, not_before_s=self._last_end_s)
        if len(day_plays.end_s):
            self._last_end_s = float(day_plays.end_s.max())
        end_ms = np.floor(day_plays.end_s * 1000).astype(np.int64)
        track_ids = self.model.track_ids
        last_ms = self.plays[-1][0] if self.plays else -1
        for i in np.flatnonzero(~day_plays.is_episode).tolist():
            ms = max(int(end_ms[i]), last_ms + 1)  # played_at values are unique per listener (they are cursors)
            end_ms[i] = ms
            self.plays.append((ms, track_ids[int(day_plays.item[i])]))
            last_ms = ms
        self.days.append((day_plays, end_ms))

    def export_rows(self, now_ms: int) -> list[dict[str, Any]]:
        """The live plays that ended by `now_ms`, as rows of an Extended Streaming History file (2024+ keys).

        The world's own export files hold everything before; these rows are what a new export would add. They
        carry the real `ms_played`, skips and reasons that the API does not tell.
        """
        self.until(now_ms)
        lookup = self.model.lookup
        rows: list[dict[str, Any]] = []
        with self._lock:
            days = list(self.days)
        for pl, end_ms in days:
            keep = np.flatnonzero(end_ms <= now_ms)
            if not len(keep):
                continue
            c = play_columns(pl, lookup)
            offline_ts = np.where(pl.offline_ts < 0, None, pl.offline_ts.astype(object))
            for i in keep.tolist():
                values = (
                    c["ts"][i], pl.platform[i], int(pl.ms[i]), pl.conn_country[i], pl.ip[i], c["track"][i],
                    c["artist"][i], c["album"][i], c["turi"][i], c["ename"][i], c["eshow"][i], c["euri"][i],
                    None, None, None, None, pl.reason_start[i], pl.reason_end[i], bool(pl.shuffle[i]),
                    bool(pl.skipped[i]), bool(pl.offline[i]), offline_ts[i], bool(pl.incognito[i]),
                )
                rows.append(dict(zip(NEW_KEYS, values, strict=True)))
        return rows


class LiveListening:
    """The live continuation of one synthetic world: its catalogue and taste models, and one history per listener.

    Built from the world's `world.json` (seed, users, end date): the catalogue is regenerated from them, which is
    exactly the one in `catalog/` (it is deterministic), with the arrays the simulation needs.
    """

    def __init__(self, seed: int, users: int, end_date: dt.date) -> None:
        self.seed, self.users, self.end_date = seed, users, end_date
        self._catalog: Catalog | None = None
        self._track_ids: list[str] = []
        self._lookup: CatLookup | None = None
        self._histories: dict[str, LiveHistory] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_world(cls, root: str | Path) -> LiveListening:
        info = _world_info(Path(root))
        try:
            return cls(int(info["seed"]), int(info["users"]), dt.date.fromisoformat(str(info["end_date"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{root}/world.json: live mode needs the world's seed, users and end_date ({exc}); "
                "regenerate it with `tunelake generate`"
            ) from None

    @property
    def catalog(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                self._catalog = generate_catalog(self.seed, self.users, self.end_date)
                self._track_ids = self._catalog.tracks["track_id"].tolist()
            return self._catalog

    @property
    def track_ids(self) -> list[str]:
        self.catalog  # noqa: B018 - built on first use
        return self._track_ids

    @property
    def lookup(self) -> CatLookup:
        """Names and URIs by catalogue index, for export rows."""
        cat = self.catalog
        with self._lock:
            if self._lookup is None:
                self._lookup = CatLookup(cat)
            return self._lookup

    def history(self, handle: str, world_plays: Callable[[], list[tuple[int, str]]]) -> LiveHistory:
        """The same history object on every call; `world_plays()` (the exports' plays) seeds it the first time."""
        with self._lock:
            if handle not in self._histories:
                self._histories[handle] = LiveHistory(self, handle, world_plays())
            return self._histories[handle]


def _world_info(root: Path) -> dict[str, Any]:
    path = root / "world.json"
    if not path.exists():
        raise ValueError(f"{path}: missing; live mode needs a world made by `tunelake generate`")
    info: dict[str, Any] = json.loads(path.read_text())
    return {**info, **(info.get("params") or {})}
