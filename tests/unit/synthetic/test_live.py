"""Live listening (`synthetic.live`) and the simulated clock: deterministic, continuous, from the listener's taste."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

if os.environ.get("CI") == "true":  # under CI a missing dependency fails, never skips
    import werkzeug  # noqa: F401
else:
    pytest.importorskip("werkzeug", reason="werkzeug is not installed (pip install 'tunelake[api]')")

from tunelake.synthetic.listeners import make_listener
from tunelake.synthetic.live import LiveListening, listener_index
from tunelake.synthetic.server.live import SimClock
from tunelake.synthetic.server.world_view import World
from tunelake.synthetic.world import generate_world

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("live-world")
    generate_world(out, users=7, days=28, seed=23)
    return out


def histories(world: Path, until_ms: int, steps: int = 1) -> dict[str, list[tuple[int, str]]]:
    """Every listener's plays up to `until_ms`, asked for in `steps` equal steps from the world's end."""
    view, live = World(world), LiveListening.from_world(world)
    end = int(view.end.timestamp() * 1000)
    out = {}
    for h in view.handles:
        hist = live.history(h, lambda h=h: view.listener(h).plays)
        for k in range(1, steps + 1):
            got = hist.until(end + (until_ms - end) * k // steps)
        out[h] = got
    return out


def test_same_world_same_time_same_plays_however_often_asked(world: Path) -> None:
    end = int(World(world).end.timestamp() * 1000)
    once = histories(world, end + 5 * DAY_MS)
    often = histories(world, end + 5 * DAY_MS, steps=37)  # a poller asking every ~3 simulated hours
    assert once == often
    later = histories(world, end + 9 * DAY_MS)
    for h, plays in once.items():
        assert later[h][: len(plays)] == plays  # what has happened stays as it was


def test_live_plays_continue_the_world(world: Path) -> None:
    view = World(world)
    end = int(view.end.timestamp() * 1000)
    week = histories(world, end + 7 * DAY_MS)
    info = json.loads((world / "world.json").read_text())
    first_live_day = dt.date.fromisoformat(info["end_date"]) + dt.timedelta(days=1)
    new_total = 0
    for h, plays in week.items():
        base = view.listener(h).plays
        assert plays[: len(base)] == base
        new = plays[len(base) :]
        new_total += len(new)
        assert all(a[0] < b[0] for a, b in itertools.pairwise(plays))  # unique, ordered cursors
        assert all(ms <= end + 7 * DAY_MS for ms, _ in new)
        assert all(tid in view.tracks for _, tid in new)
        if new and base:
            # the first live session starts at least 31 minutes after the world's last play …
            assert new[0][0] > base[-1][0] + 1860 * 1000
        tz = ZoneInfo(make_listener(listener_index(h), 23).timezone)
        midnight = dt.datetime.combine(first_live_day, dt.time(), tz)
        # … and not before the listener's first local day after the world's end
        assert all(ms >= midnight.timestamp() * 1000 for ms, _ in new)
    assert new_total > 100  # seven listeners, a week: they did keep listening


def test_live_plays_come_from_the_listeners_own_taste(world: Path) -> None:
    """New days are drawn from the taste the exports were written from: the genre mix of a listener's live plays
    is nearer to that listener's own world plays than to any other listener's (every one a different type)."""
    view, live = World(world), LiveListening.from_world(world)
    genre = dict(zip(live.track_ids, live.catalog.track_genre.tolist(), strict=True))
    end = int(view.end.timestamp() * 1000)
    plays = histories(world, end + 21 * DAY_MS)

    def mix(tracks: list[str]) -> Counter[int]:
        c = Counter(genre[t] for t in tracks)
        return Counter({g: n / len(tracks) for g, n in c.items()})

    def distance(a: Counter[int], b: Counter[int]) -> float:  # total variation
        return sum(abs(a[g] - b[g]) for g in set(a) | set(b)) / 2

    worlds = {h: mix([t for _, t in view.listener(h).plays]) for h in view.handles}
    checked = 0
    for h in view.handles:
        new = [t for _, t in plays[h][len(view.listener(h).plays) :]]
        if len(new) < 30:
            continue
        near = {other: distance(mix(new), w) for other, w in worlds.items()}
        assert min(near, key=near.__getitem__) == h, (h, near)
        checked += 1
    assert checked >= 5


def test_regenerated_catalogue_is_the_worlds(world: Path) -> None:
    live = LiveListening.from_world(world)
    assert live.track_ids == pq.read_table(world / "catalog" / "tracks.parquet")["track_id"].to_pylist()


def test_live_needs_a_generated_world(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"world\.json: missing"):
        LiveListening.from_world(tmp_path)
    (tmp_path / "world.json").write_text(json.dumps({"users": 3}))
    with pytest.raises(ValueError, match="seed, users and end_date"):
        LiveListening.from_world(tmp_path)
    assert listener_index("listener-0042") == 41
    with pytest.raises(ValueError, match="not a synthetic listener"):
        listener_index("alice")


class Wall:
    """A wall clock a test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sim_clock_runs_speed_times_faster_and_never_back() -> None:
    wall = Wall()
    clock = SimClock(1_000_000, 60, wall=wall)
    wall.t += 30  # before the server starts, time does not count
    clock.start()
    assert clock.now_ms() == 1_000_000
    wall.t += 2.5
    assert clock.now_ms() == 1_000_000 + 150_000  # 2.5 s × 60
    assert clock.set(advance_s=3600) == 1_000_000 + 150_000 + 3_600_000
    with pytest.raises(ValueError, match="cannot set the clock back"):
        clock.set(now_ms=1_000_000)
    with pytest.raises(ValueError, match="never goes back"):
        clock.set(advance_s=-1)
    assert clock.set(now_ms=9_000_000, speed=0) == 9_000_000
    wall.t += 100
    assert clock.now_ms() == 9_000_000  # speed 0: stopped
    clock.start()  # already running: start does not reset it
    assert clock.now_ms() == 9_000_000
    clock.set(speed=2)
    wall.t += 1
    assert clock.now_ms() == 9_002_000
    with pytest.raises(ValueError, match="speed must be >= 0"):
        SimClock(0, -1)
