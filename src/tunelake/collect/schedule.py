"""When to poll a listener next.

Spotify keeps only a listener's last 50 plays, ~2.5–3.5 hours of continuous listening (15–20 tracks an hour), so
no listener may go longer than that between polls. The interval adapts within bounds that keep that promise:
after a busy poll (≥ 40 plays: the listener was close to losing plays) the next comes at half the interval, down
to a quarter of the base; after an idle one (0 plays) it stretches by half, up to 4 × the base (40 min at the
default 10 min: ~13 plays of continuous listening, far from 50). Every interval gets ±10 % jitter, so listeners
connected at the same moment do not poll in lockstep against one app's rate limit.
"""

from __future__ import annotations

import random

BUSY = 40  # plays in one poll that mean the listener got close to the 50-play horizon
MIN_FACTOR, MAX_FACTOR = 0.25, 4.0
JITTER = 0.10


def next_interval(base_s: float, current_s: float | None, plays: int, rng: random.Random) -> float:
    """The next interval (seconds, jittered) after a poll that brought `plays`."""
    current = base_s if current_s is None else current_s
    if plays >= BUSY:
        target = current / 2
    elif plays == 0:
        target = current * 1.5
    else:
        target = base_s
    target = min(max(target, base_s * MIN_FACTOR), base_s * MAX_FACTOR)
    return target * rng.uniform(1 - JITTER, 1 + JITTER)


def bounds(base_s: float) -> tuple[float, float]:
    """The shortest and longest interval `next_interval` can return."""
    return base_s * MIN_FACTOR * (1 - JITTER), base_s * MAX_FACTOR * (1 + JITTER)
