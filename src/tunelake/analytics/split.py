"""The per-listener temporal split behind the recommender evaluation: fit | validation | test, per listener.

Real histories end anywhere (one export in 2019, another last week), so holding out the last weeks of the *whole
dataset* leaves most listeners with nothing to be scored on. Each listener is therefore split on their own clock:

* ``weeks`` mode: the test period is the listener's last ``test_weeks`` weeks (up to their last play), the
  validation period the ``test_weeks`` weeks before it, and fitting uses everything earlier;
* ``percent`` mode: the test period is the listener's last ``test_percent`` % of plays, validation the same number
  of plays before them.

Hyper-parameters are chosen by fitting on *fit* and scoring on *validation*; the chosen models are refitted on
*fit + validation* and scored on *test*, which no choice ever looked at. Each listener's relevant items in a period
are the tracks they play for the first time in it. A listener is evaluated in a period when they have at least
``min_train_plays`` plays before it and at least one relevant item in it.

With more than ``listeners`` listeners, the whole evaluation (fitting, choosing, scoring) runs on a seeded sample of
that many: its cost is a top-n over the whole catalogue per listener and fitted model (~170 s for 1,500 listeners
at 10.3M plays), and its memory every play of the listeners it loads, so a sample bounds both at any scale while a
bootstrap over ~2,000 listeners already decides. The recommendations themselves are fitted on every listener.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from tunelake.errors import InputError

FIT, VALIDATION, TEST = 0, 1, 2


@dataclass(frozen=True)
class SplitSpec:
    """How each listener's history is cut (see the module docstring)."""

    mode: str = "weeks"
    test_weeks: int = 4
    test_percent: int = 20
    min_train_plays: int = 20
    listeners: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in ("weeks", "percent"):
            raise InputError(f"unknown split mode {self.mode!r}", field="eval_split", hint="weeks or percent")
        if self.test_weeks < 1:
            raise InputError(f"test period of {self.test_weeks} weeks", field="eval_test_weeks", hint="use ≥ 1")
        if not 1 <= self.test_percent <= 45:
            raise InputError(f"test share of {self.test_percent}%", field="eval_test_percent",
                             hint="use 1–45 (validation takes as many plays again)")
        if self.min_train_plays < 1:
            raise InputError(f"min_train_plays {self.min_train_plays}", field="eval_min_train_plays",
                             hint="use ≥ 1")
        if self.listeners < 0:
            raise InputError(f"{self.listeners} listeners to evaluate on", field="eval_listeners",
                             hint="use ≥ 1, or 0 for every listener")

    def describe(self) -> str:
        if self.mode == "weeks":
            cut = f"per listener: last {self.test_weeks} weeks test, the {self.test_weeks} weeks before validation"
        else:
            cut = f"per listener: last {self.test_percent}% of plays test, the {self.test_percent}% before validation"
        return cut + (f"; at most {self.listeners:,} listeners (seeded sample)" if self.listeners else "")


def sample_listeners(con: duckdb.DuckDBPyConnection, n: int, seed: int = 0) -> np.ndarray | None:
    """A seeded sample of ``n`` of the listeners with plays (sorted), or None when there are no more than ``n``
    (or ``n`` is 0: every listener)."""
    users = con.execute("SELECT DISTINCT user_key FROM fact_play ORDER BY 1").fetchnumpy()["user_key"]
    if n <= 0 or len(users) <= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(np.asarray(users, dtype=np.int64), n, replace=False))


def load_plays(con: duckdb.DuckDBPyConnection, users: np.ndarray | None = None) -> pd.DataFrame:
    """Every music play with a catalogued track (of ``users`` only, when given): user_key, track_id, started_at
    (UTC), in time order."""
    only = ""
    if users is not None:
        con.register("_eval_users", pd.DataFrame({"user_key": users}))
        only = "AND f.user_key IN (SELECT user_key FROM _eval_users)"
    try:
        return con.execute(f"""SELECT f.user_key, f.track_id, f.started_at FROM fact_play f
                               WHERE f.track_id IN (SELECT track_id FROM dim_track) {only}
                               ORDER BY f.user_key, f.started_at, f.track_id""").df()
    finally:
        if users is not None:
            con.unregister("_eval_users")


def assign_parts(plays: pd.DataFrame, spec: SplitSpec) -> pd.DataFrame:
    """``plays`` with a ``part`` column (FIT, VALIDATION, TEST), plus per listener the two cut-offs
    ``val_start`` and ``test_start`` (the first instant of each period)."""
    df = plays.sort_values(["user_key", "started_at"], kind="stable").reset_index(drop=True)
    ts = pd.to_datetime(df["started_at"])
    g = df.groupby("user_key", sort=False)
    if spec.mode == "weeks":
        span = pd.Timedelta(weeks=spec.test_weeks)
        last = ts.groupby(df["user_key"]).transform("max")
        test_start = last - span
        val_start = test_start - span
        df["test_start"], df["val_start"] = test_start, val_start
        # plays after the cut-off instants belong to the period: a listener's last play is always in test
        df["part"] = np.where(ts > test_start, TEST, np.where(ts > val_start, VALIDATION, FIT))
    else:
        n = g["track_id"].transform("size")
        pos = g.cumcount()
        k = np.ceil(n * spec.test_percent / 100.0).astype(int)
        df["part"] = np.where(pos >= n - k, TEST, np.where(pos >= n - 2 * k, VALIDATION, FIT))
        first = lambda part: ts.where(df["part"] == part).groupby(df["user_key"]).transform("min")  # noqa: E731
        df["test_start"], df["val_start"] = first(TEST), first(VALIDATION)
    return df


def relevant_sets(parts: pd.DataFrame, period: int, col_of: pd.Series, row_of: dict[int, int],
                  min_train_plays: int) -> dict[int, set[int]]:
    """Matrix row → columns of the tracks a listener plays for the first time in ``period`` (VALIDATION or TEST),
    for the listeners with enough history before it and at least one such track."""
    before = parts[parts["part"] < period]
    inside = parts[parts["part"] == period]
    n_before = before.groupby("user_key").size()
    seen = before.groupby("user_key")["track_id"].agg(set)
    out: dict[int, set[int]] = {}
    for user_key, tracks in inside.groupby("user_key")["track_id"].agg(set).items():
        if int(n_before.get(user_key, 0)) < min_train_plays:
            continue
        new = tracks - seen.get(user_key, set())
        if new:
            out[row_of[int(user_key)]] = {int(col_of[t]) for t in new}
    return out


def counts(parts: pd.DataFrame, below: int) -> pd.DataFrame:
    """(user_key, track_id, plays) over the plays in parts before ``below`` — what a model is fitted on."""
    sub = parts[parts["part"] < below]
    return sub.groupby(["user_key", "track_id"], as_index=False).size().rename(columns={"size": "plays"})
