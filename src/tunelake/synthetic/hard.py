"""The hard synthetic world (``generate_world(..., world="hard")``): listeners closer to real ones.

The default world plants seven clean listener types, which segmentation recovers perfectly (ARI 1.00) and
recommenders find easy. Real listeners are not like that; here each listener is:

* a **blend** of two planted types, the dominant one weighing 50–80 % at the start;
* **drifting**: the blend moves towards the second type by 10–40 points over the history, and the listener is
  simulated in two-month periods, each with its own blend and its own favourites (so old favourites fade);
* **heavy-tailed** in activity: a log-normal activity factor (σ = 0.8) scales days active, sessions and session
  length, so a few listeners play far more than most;
* **noisy**: 15 % of every blend's genre weight is spread over all genres;
* **on their own clock**: each history starts in the first quarter of the window and half the listeners stop
  early (anywhere after the first third), as real exports end anywhere.

The ground truth (``truth/listeners.csv``) names the dominant type over the whole history as ``listener_type``
and keeps the mix: ``type_a``, ``type_b``, ``weight_a_start``, ``weight_a_end``, ``activity``, ``first_day``,
``last_day``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np

from tunelake.synthetic.catalog_gen import GENRES, Catalog
from tunelake.synthetic.listeners import TYPES, Listener, ListenerType, Plays, simulate

PERIOD_DAYS = 60
NOISE = 0.15


def _share(d: dict[str, float]) -> dict[str, float]:
    total = sum(d.values())
    return {k: v / total for k, v in d.items()}


def _era(a: ListenerType, b: ListenerType, w: float) -> tuple[float, float] | None:
    if a.era and b.era:
        (ca, sa), (cb, sb) = a.era, b.era
        c = w * ca + (1 - w) * cb
        return c, float(np.sqrt(w * sa ** 2 + (1 - w) * sb ** 2 + w * (1 - w) * (ca - cb) ** 2))
    return (a.era if w >= 0.5 else b.era) if (a.era or b.era) else None


def blend(a: ListenerType, b: ListenerType, w: float, activity: float = 1.0) -> ListenerType:
    """A listener type that is ``w`` of ``a`` and ``1 - w`` of ``b``, with genre noise and an activity factor."""
    mix = lambda x, y: w * x + (1 - w) * y  # noqa: E731
    ga, gb = _share(a.genres), _share(b.genres)
    genres = {g: (1 - NOISE) * mix(ga.get(g, 0.0), gb.get(g, 0.0)) + NOISE / len(GENRES) for g in GENRES}
    pa, pb = _share(a.platforms), _share(b.platforms)
    platforms = {p: mix(pa.get(p, 0.0), pb.get(p, 0.0)) for p in dict.fromkeys([*pa, *pb])}
    hw, he = mix(a.hours_weekday, b.hours_weekday), mix(a.hours_weekend, b.hours_weekend)
    return dataclasses.replace(
        a, name=f"{a.name}+{b.name}",
        active_p=float(np.clip(mix(a.active_p, b.active_p) * activity ** 0.5, 0.03, 0.98)),
        weekday_mult=tuple(mix(x, y) for x, y in zip(a.weekday_mult, b.weekday_mult, strict=True)),
        sessions_extra=mix(a.sessions_extra, b.sessions_extra) * activity ** 0.7,
        tracks_per_session=max(2.0, mix(a.tracks_per_session, b.tracks_per_session) * activity ** 0.5),
        hours_weekday=hw / hw.sum(), hours_weekend=he / he.sum(), genres=genres,
        skip_p=mix(a.skip_p, b.skip_p), partial_p=mix(a.partial_p, b.partial_p),
        shuffle_p=mix(a.shuffle_p, b.shuffle_p), novelty=mix(a.novelty, b.novelty),
        fav_share=mix(a.fav_share, b.fav_share), alpha=mix(a.alpha, b.alpha), era=_era(a, b, w),
        podcast_p=mix(a.podcast_p, b.podcast_p), platforms=platforms,
        n_fav=(round(mix(a.n_fav[0], b.n_fav[0])), round(mix(a.n_fav[1], b.n_fav[1]))),
        offline_p=mix(a.offline_p, b.offline_p), video_p=mix(a.video_p, b.video_p))


@dataclasses.dataclass(frozen=True)
class Mix:
    """One hard-world listener's plan: two types, the drift of their weights, activity and active window."""

    type_a: int
    type_b: int
    weight_a_start: float
    weight_a_end: float
    activity: float
    first_day: int
    last_day: int  # inclusive, 0-based within the window

    def weight_at(self, day: float) -> float:
        span = max(self.last_day - self.first_day, 1)
        t = min(max((day - self.first_day) / span, 0.0), 1.0)
        return self.weight_a_start + t * (self.weight_a_end - self.weight_a_start)

    @property
    def dominant(self) -> int:
        mean_a = (self.weight_a_start + self.weight_a_end) / 2
        return self.type_a if mean_a >= 0.5 else self.type_b


def plan(lis: Listener, seed: int, days: int) -> Mix:
    """The listener's mix: the planted type is ``type_a``; ``type_b`` another type, drawn from ``(seed, index)``."""
    rng = np.random.default_rng([seed, 404, lis.index])
    b = int(rng.choice([t for t in range(len(TYPES)) if t != lis.type_index]))
    w0 = float(rng.uniform(0.5, 0.8))
    w1 = w0 - float(rng.uniform(0.1, 0.4))
    first = int(rng.integers(0, max(days // 4, 1)))
    last = days - 1 if rng.random() < 0.5 else int(rng.integers(min(days // 3 + first, days - 1), days))
    return Mix(lis.type_index, b, w0, w1, float(rng.lognormal(0.0, 0.8)), first, max(last, first))


def simulate_hard(lis: Listener, cat: Catalog, seed: int, start: dt.date, days: int) -> tuple[Plays, Mix]:
    """All plays of a hard-world listener: period by period, each period with the blend of its middle day."""
    mix = plan(lis, seed, days)
    parts: list[Plays] = []
    params: dict[str, Any] = {}
    favs: list[np.ndarray] = []
    legacy: dict[str, str] = {}
    devices: dict[str, None] = {}
    sessions = 0
    for n, lo in enumerate(range(mix.first_day, mix.last_day + 1, PERIOD_DAYS)):
        length = min(PERIOD_DAYS, mix.last_day + 1 - lo)
        w = mix.weight_at(lo + length / 2)
        kind = blend(TYPES[mix.type_a], TYPES[mix.type_b], w, mix.activity)
        pl = simulate(lis, cat, seed, start + dt.timedelta(days=lo), length, kind=kind, stream=(505, n))
        pl.session = pl.session + sessions
        sessions = int(pl.session.max()) + 1 if len(pl.session) else sessions
        parts.append(pl)
        params = params or dict(lis.params)
        devices.update(dict.fromkeys(str(lis.params["platforms"]).split(";")))
        favs.append(lis.fav_artists)  # type: ignore[attr-defined]
        legacy = {**lis.legacy_platform, **legacy}  # type: ignore[attr-defined]
    lis.params = {**params, "platforms": ";".join(devices)}
    lis.fav_artists = np.unique(np.concatenate(favs))  # type: ignore[attr-defined]
    lis.legacy_platform = legacy  # type: ignore[attr-defined]
    joined = Plays(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in dataclasses.fields(Plays)))
    return joined, mix


def truth_columns(mix: Mix) -> dict[str, Any]:
    return {"listener_type": TYPES[mix.dominant].name, "type_a": TYPES[mix.type_a].name,
            "type_b": TYPES[mix.type_b].name, "weight_a_start": round(mix.weight_a_start, 3),
            "weight_a_end": round(mix.weight_a_end, 3), "activity": round(mix.activity, 3),
            "first_day": mix.first_day, "last_day": mix.last_day}
