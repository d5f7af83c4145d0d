"""Two listeners side by side: how compatible their taste is, what they share, what each might try from the other.

The compatibility score is the cosine similarity of the two listeners' artist vectors, where each component is the
artist's share of the listener's streams (plays ≥ 30 s: a two-second skip says nothing about taste), every
stream weighted by its recency, ``0.5 ** (age_days / half_life_days)`` with the age counted from that listener's
own last play. Cosine ignores the scale of each vector, so two histories that end years apart are compared on
their own recent taste, not penalised for the gap. The cosine is a sum over shared artists of
``a_i · b_i / (‖a‖ ‖b‖)``, so each shared artist's part of the score is exact, and that is the explanation shown.

Opt-in: `compare_with_consent` refuses unless both listeners agreed (`tunelake.analytics.consent`); `compare`
itself only computes.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from tunelake.analytics.consent import require_consent
from tunelake.analytics.insights import Filters, _where, resolve_user
from tunelake.errors import InputError
from tunelake.lake.store import Lake

DEFAULT_HALF_LIFE_DAYS = 365.0
_DATE_OF_DKEY = ("make_date(CAST(date_key // 10000 AS INTEGER), CAST(date_key // 100 % 100 AS INTEGER), "
                 "CAST(date_key % 100 AS INTEGER))")


def compatibility_label(score: int) -> str:
    """Words for a 0–100 score (cut-offs chosen so that a label means the same at any history length)."""
    if score >= 70:
        return "kindred ears"
    if score >= 40:
        return "a lot in common"
    if score >= 15:
        return "some common ground"
    return "different worlds"


def track_weights(con: duckdb.DuckDBPyConnection, user_keys: tuple[int, ...], half_life_days: float | None,
                  start: date | None = None, end: date | None = None) -> pd.DataFrame:
    """Recency-weighted streams per listener and track: user_key, track_id, artist_id, streams, weight.

    ``half_life_days=None`` gives every stream weight 1 (weight = streams)."""
    if half_life_days is not None and not half_life_days > 0:
        raise InputError(f"the half-life must be a positive number of days, got {half_life_days}",
                         field="half_life_days", hint="e.g. 365, or none for no recency weighting")
    f = Filters(start=start, end=end, user_keys=user_keys)
    decay = "1.0" if half_life_days is None else f"pow(0.5, date_diff('day', p.d, l.last_d) / {float(half_life_days)})"
    return con.execute(f"""
        WITH p AS (SELECT user_key, track_id, artist_id, {_DATE_OF_DKEY} AS d
                   FROM fact_play {_where(con, f)} AND is_stream AND artist_id IS NOT NULL),
        l AS (SELECT user_key, max(d) AS last_d FROM p GROUP BY 1)
        SELECT p.user_key, p.track_id, p.artist_id, count(*) AS streams, sum({decay}) AS weight
        FROM p JOIN l USING (user_key) GROUP BY ALL ORDER BY 1, 2""").df()


def cosine(a: dict[str, float], b: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Cosine similarity of two sparse non-negative vectors and each shared key's part of it (the parts sum to
    the cosine). 0.0 with no parts when either vector is empty."""
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    if na == 0 or nb == 0:
        return 0.0, {}
    parts = {k: a[k] * b[k] / (na * nb) for k in a.keys() & b.keys() if a[k] * b[k] > 0}
    return sum(parts.values()), parts


def _shares(df: pd.DataFrame, key: str) -> dict[str, float]:
    s = df.groupby(key)["weight"].sum()
    total = float(s.sum())
    return {str(k): float(v) / total for k, v in s.items()} if total > 0 else {}


def _names(con: duckdb.DuckDBPyConnection, table: str, key: str, cols: str, ids: list[str]) -> pd.DataFrame:
    return con.execute(f"SELECT {key}, {cols} FROM {table} WHERE {key} IN (SELECT unnest(?))", [ids]).df()


def _try_from(con: duckdb.DuckDBPyConnection, theirs: pd.DataFrame, my_key: int,
              n: int) -> dict[str, list[dict[str, Any]]]:
    """The other listener's favourites (by their recency weight) that I have never played at all, in my whole
    history: artists new to me, and tracks (each flagged when its artist is new to me too)."""
    played = con.execute("SELECT DISTINCT track_id, artist_id FROM fact_play WHERE user_key = ?", [my_key]).df()
    known_tracks, known_artists = set(played["track_id"]), set(played["artist_id"].dropna())
    arts = theirs.groupby("artist_id")["weight"].sum().sort_values(ascending=False, kind="stable")
    arts = [a for a in arts.index if a not in known_artists][:n]
    trs = theirs[~theirs["track_id"].isin(known_tracks)].sort_values(["weight", "track_id"],
                                                                     ascending=[False, True]).head(n)
    an = _names(con, "dim_artist", "artist_id", "artist_name", arts).set_index("artist_id")["artist_name"]
    tn = _names(con, "dim_track", "track_id", "track_name, artist_name", list(trs["track_id"])).set_index("track_id")
    return {
        "artists": [{"artist_id": a, "artist_name": an.get(a)} for a in arts],
        "tracks": [{"track_id": t, "track_name": tn["track_name"].get(t), "artist_name": tn["artist_name"].get(t),
                    "new_artist": a not in known_artists}
                   for t, a in zip(trs["track_id"], trs["artist_id"], strict=True)],
    }


def compare(con: duckdb.DuckDBPyConnection, a: int | str, b: int | str, *,
            half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS, start: date | None = None,
            end: date | None = None, n: int = 5) -> dict[str, Any]:
    """Compatibility of listeners `a` and `b` (handles or keys), with its explanation: the score (0–100), the
    cosine behind it, each shared artist's part of it, the genre cosine where genres are known (None otherwise),
    shared top artists and tracks, and what each might try from the other's favourites."""
    (ka, ha), (kb, hb) = resolve_user(con, a), resolve_user(con, b)
    if ka == kb:
        raise InputError(f"cannot compare {ha} with themselves", field="user", hint="name two different listeners")
    w = track_weights(con, (ka, kb), half_life_days, start, end)
    wa, wb = w[w["user_key"] == ka], w[w["user_key"] == kb]
    for h, part in ((ha, wa), (hb, wb)):
        if part.empty:
            raise InputError(f"{h} has no streams {'in this period' if start or end else 'yet'}: nothing to compare",
                             field="user", hint="pick a period in which both listened")
    sa, sb = _shares(wa, "artist_id"), _shares(wb, "artist_id")
    cos, parts = cosine(sa, sb)
    score = round(100 * cos)
    shared = sorted(parts, key=lambda k: (-parts[k], k))
    names = _names(con, "dim_artist", "artist_id", "artist_name", shared[:n]).set_index("artist_id")["artist_name"]
    shared_artists = [{"artist_id": k, "artist_name": names.get(k), "share_a": sa[k], "share_b": sb[k],
                       "part": parts[k], "part_of_score": parts[k] / cos} for k in shared[:n]]

    ta, tb = _shares(wa, "track_id"), _shares(wb, "track_id")
    both = sorted(ta.keys() & tb.keys(), key=lambda k: (-min(ta[k], tb[k]), k))[:n]
    tn = _names(con, "dim_track", "track_id", "track_name, artist_name", both).set_index("track_id")
    sa_streams, sb_streams = wa.set_index("track_id")["streams"], wb.set_index("track_id")["streams"]
    shared_tracks = [{"track_id": t, "track_name": tn["track_name"].get(t), "artist_name": tn["artist_name"].get(t),
                      "streams_a": int(sa_streams[t]), "streams_b": int(sb_streams[t])} for t in both]

    genre = con.execute("SELECT track_id, primary_genre FROM dim_track WHERE primary_genre IS NOT NULL "
                        "AND track_id IN (SELECT unnest(?))", [list(w["track_id"].unique())]).df()
    wg = w.merge(genre, on="track_id")
    ga, gb = _shares(wg[wg["user_key"] == ka], "primary_genre"), _shares(wg[wg["user_key"] == kb], "primary_genre")
    genre_cos = cosine(ga, gb)[0] if ga and gb else None

    artists_a, artists_b = set(sa), set(sb)
    weighting = (f"streams weighted by recency, half-life {half_life_days:g} days" if half_life_days is not None
                 else "streams, unweighted")
    lead = ", ".join(f"{r['artist_name']} ({r['part_of_score']:.0%})" for r in shared_artists[:3])
    explanation = (f"Cosine similarity of {ha}'s and {hb}'s artist shares ({weighting}): {cos:.2f}. "
                   + (f"Most of it comes from {lead}. " if lead else "They share no artist. ")
                   + f"They share {len(artists_a & artists_b)} of {len(artists_a | artists_b)} artists.")
    return {
        "a": {"user_key": ka, "handle": ha, "streams": int(wa["streams"].sum()), "artists": len(artists_a)},
        "b": {"user_key": kb, "handle": hb, "streams": int(wb["streams"].sum()), "artists": len(artists_b)},
        "score": score, "label": compatibility_label(score), "cosine": cos, "half_life_days": half_life_days,
        "start": start, "end": end, "explanation": explanation,
        "genre_cosine": genre_cos,
        "shared_artist_count": len(artists_a & artists_b),
        "artist_jaccard": len(artists_a & artists_b) / len(artists_a | artists_b),
        "shared_artists": shared_artists, "shared_tracks": shared_tracks,
        "for_a": _try_from(con, wb, ka, n), "for_b": _try_from(con, wa, kb, n),
    }


def compare_with_consent(lake: Lake, con: duckdb.DuckDBPyConnection, a: int | str, b: int | str,
                         **kwargs: Any) -> dict[str, Any]:
    """`compare`, once both listeners have agreed to be compared (ConsentError naming who has not, otherwise):
    the entry point of the CLI, the dashboard and the web service, so none of them can forget the check."""
    (ka, ha), (kb, hb) = resolve_user(con, a), resolve_user(con, b)
    require_consent(lake, [ha, hb] if ha != hb else [ha])
    return compare(con, ka, kb, **kwargs)
