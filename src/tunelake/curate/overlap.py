"""The one rule for "the same playback from two sources" (two exports, an export and the Web API, either way round).

A row A of the less precise source and a row E of the other are the same playback of one listener when

  1. they are the same kind of item (track, episode, audiobook);
  2. they name the same item: equal keys, or the same resolved id (account data against anything: the key is the
     normalised names, artist+track, show+episode or book+chapter, see `sources.names.normalize`; the Web API
     against an export: the key is the track id);
  3. E's end lies in A's window, widened by the tolerance on both sides (tol = `overlap_tolerance_s`, 90 s):
     account data gives `endTime` truncated to the minute, so A.endTime − tol ≤ E.ts < A.endTime + 60 s + tol;
     the API gives `played_at` to the millisecond, so |E.ts − A.played_at| ≤ tol;
  4. account data and the extended history agree on ms_played: |A.ms_played − E.ms_played| ≤ MS_TOLERANCE
     (1 s). The API has no ms_played (its rows carry the track's duration), so this condition is left out.

Matching is one-to-one. Among candidates, a pair whose E ends inside A's exact minute beats one that only fits
the widened window, then the smaller ms difference, then the nearer time; pairs are taken when each side is the
other's best, repeatedly, until no candidate is left. The kept row is E (it has every field); A is counted as
`merged`. The join is an equi-join on (item key, minute bucket) with each A row expanded to the few buckets its
window covers, so it stays linear in the number of rows (100k+ rows per user).

Scrobbles (ListenBrainz, Last.fm, Maloja: no ms_played, a start time) go through the same `find_pairs`, comparing
start times, as `curate.scrobble_merge` describes.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc

from tunelake.duck import cursor

MS_TOLERANCE = 1000


ACCOUNT_WINDOW_MS = 60_000  # account data: the minute `endTime` was truncated to
API_WINDOW_MS = 0  # the Web API: a point in time


def find_pairs(
    account: pa.Table, other: pa.Table, tolerance_s: float, ms_tolerance: int | None = MS_TOLERANCE,
    window_ms: int = ACCOUNT_WINDOW_MS,
) -> list[tuple[int, int]]:
    """(A idx, E idx) pairs that are one playback. Both tables: idx, t (epoch ms), ms, ctype, k, tid. `account` is
    the side A with the `window_ms` precision, or with a window per row when it has a column `w` (ms; the Web API
    against scrobbles: a play of known end and length started somewhere in the first half of it);
    `ms_tolerance=None` leaves condition 4 out."""
    if not account.num_rows or not other.num_rows:
        return []
    tol = int(tolerance_s * 1000)
    per_row = "w" in account.column_names
    widest = max(int(pc.max(account["w"]).as_py() or 0), 0) if per_row else window_ms
    lo = -math.ceil(tol / 60_000)  # the minute buckets an E of A's window can fall in, relative to A's
    hi = math.ceil((tol + widest) / 60_000)
    ms_check = "TRUE" if ms_tolerance is None else f"dms <= {int(ms_tolerance)}"
    acc = "acc" if per_row else f"(SELECT *, {int(window_ms)} AS w FROM acc)"

    con = cursor()
    try:
        con.register("acc", account)
        con.register("oth", other)
        # upper: the last E.t - A.t still in A's window (ms are integers, the window is half-open)
        con.execute(
            f"""
            CREATE TEMP TABLE cand AS
            WITH e AS (SELECT *, t // 60000 AS b FROM oth),
            ax AS (SELECT a.*, t // 60000 + r.o AS b FROM {acc} AS a, range({lo}, {hi + 1}) AS r(o)),
            pairs AS (
                SELECT ax.idx AS ai, e.idx AS ei, ax.t AS a_t, ax.w AS w, e.t AS e_t, abs(e.ms - ax.ms) AS dms
                FROM ax JOIN e ON e.k = ax.k AND e.ctype = ax.ctype AND e.b = ax.b
                UNION
                SELECT ax.idx, e.idx, ax.t, ax.w, e.t, abs(e.ms - ax.ms)
                FROM ax JOIN e ON e.tid = ax.tid AND e.ctype = ax.ctype AND e.b = ax.b
            )
            SELECT ai, ei, dms,
                   CASE WHEN e_t >= a_t AND e_t < a_t + w THEN 0 ELSE 1 END AS outside,
                   abs(e_t - (a_t + w // 2)) AS dt
            FROM pairs
            WHERE e_t >= a_t - {tol} AND e_t <= a_t + w + {tol} - CASE WHEN w > 0 THEN 1 ELSE 0 END AND {ms_check}
            """
        )
        found: list[tuple[int, int]] = []
        while True:
            best = con.execute(
                """
                SELECT ai, ei FROM cand
                QUALIFY row_number() OVER (PARTITION BY ai ORDER BY outside, dms, dt, ei) = 1
                    AND row_number() OVER (PARTITION BY ei ORDER BY outside, dms, dt, ai) = 1
                """
            ).fetchall()
            if not best:
                break
            found.extend(best)
            con.register("taken", pa.table({"ai": [p[0] for p in best], "ei": [p[1] for p in best]}))
            con.execute("DELETE FROM cand WHERE ai IN (SELECT ai FROM taken) OR ei IN (SELECT ei FROM taken)")
            con.unregister("taken")
    finally:
        con.close()
    return found


def api_inputs(idx: pa.Array, t: pa.Array, track_id: pa.Array) -> pa.Table:
    """`find_pairs` input for plays known by track id (Web API rows, and the export rows they are matched to)."""
    n = len(idx)
    return pa.table({"idx": idx, "t": t, "ms": pa.nulls(n, pa.int64()), "ctype": pa.array(["track"] * n),
                     "k": track_id, "tid": track_id})


def api_pairs(api: pa.Table, other: pa.Table, tolerance_s: float) -> list[tuple[int, int]]:
    """(API idx, other idx) pairs that are one playback: `find_pairs` with the API's point-in-time window and no
    ms_played condition. Inputs from `api_inputs`."""
    return find_pairs(api, other, tolerance_s, ms_tolerance=None, window_ms=API_WINDOW_MS)
