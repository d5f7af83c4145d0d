"""The matching rule between account-data plays and extended-history (or API) plays of the same person.

Account data gives `endTime` = the playback's end truncated to the minute; the extended history gives `ts` = the
end to the second. An account row A and another row E are the same playback when

  1. they belong to the same user and are the same kind of item (track, episode, audiobook);
  2. they name the same item: equal normalised names (artist+track, show+episode, book+chapter, see
     `curate.resolve.normalize`), or the same resolved track id;
  3. E's end lies in A's minute, widened by the tolerance on both sides:
     A.endTime − tol ≤ E.ts < A.endTime + 60 s + tol   (tol = `overlap_tolerance_s`, default 90 s);
  4. |A.ms_played − E.ms_played| ≤ MS_TOLERANCE (1 s; the two files normally agree to the millisecond).

Matching is one-to-one. Among candidates, a pair whose E ends inside A's exact minute beats one that only fits
the widened window, then the smaller ms difference, then the nearer time; pairs are taken when each side is the
other's best, repeatedly, until no candidate is left. The kept row is E (it has every field); A is counted as
`merged`. The join is an equi-join on (item key, minute bucket) with each A row expanded to the few buckets its
window covers, so it stays linear in the number of rows (100k+ rows per user).
"""

from __future__ import annotations

import math

import pyarrow as pa

from tunelake.duck import cursor

MS_TOLERANCE = 1000


def find_pairs(
    account: pa.Table, other: pa.Table, tolerance_s: float, ms_tolerance: int = MS_TOLERANCE
) -> list[tuple[int, int]]:
    """(account idx, other idx) pairs that are one playback. Both tables: idx, t (epoch ms), ms, ctype, k, tid."""
    if not account.num_rows or not other.num_rows:
        return []
    tol = int(tolerance_s * 1000)
    reach = math.ceil(tolerance_s / 60) if tolerance_s > 0 else 0

    con = cursor()
    try:
        con.register("acc", account)
        con.register("oth", other)
        con.execute(
            f"""
            CREATE TEMP TABLE cand AS
            WITH e AS (SELECT *, t // 60000 AS b FROM oth),
            ax AS (SELECT acc.*, t // 60000 + r.o AS b FROM acc, range({-reach}, {reach + 2}) AS r(o)),
            pairs AS (
                SELECT ax.idx AS ai, e.idx AS ei, ax.t AS a_t, e.t AS e_t, abs(e.ms - ax.ms) AS dms
                FROM ax JOIN e ON e.k = ax.k AND e.ctype = ax.ctype AND e.b = ax.b
                UNION
                SELECT ax.idx, e.idx, ax.t, e.t, abs(e.ms - ax.ms)
                FROM ax JOIN e ON e.tid = ax.tid AND e.ctype = ax.ctype AND e.b = ax.b
            )
            SELECT ai, ei, dms,
                   CASE WHEN e_t >= a_t AND e_t < a_t + 60000 THEN 0 ELSE 1 END AS outside,
                   abs(e_t - (a_t + 30000)) AS dt
            FROM pairs
            WHERE e_t >= a_t - {tol} AND e_t < a_t + 60000 + {tol} AND dms <= {int(ms_tolerance)}
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
