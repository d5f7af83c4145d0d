"""Web API objects as rows of the curated tables (`sources.types`): recently-played items as plays, tracks,
artists, albums and audio features as metadata cache rows.

API plays carry no `ms_played`: a curated API play gets `ms_played` = the track's `duration_ms` and `ended_at` =
`played_at`, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from tunelake.sources.types import FEATURE_FIELDS, TS, conform

SOURCE = "api"
TIME_RANGES = ("short_term", "medium_term", "long_term")


def api_time(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def play_rows(items: list[dict[str, Any]], user_key: int, batch_id: str) -> pa.Table:
    """Recently-played items → curated plays rows (source api, ms precision, ms_played = duration)."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("ended_at", "ms_played", "track_id", "track_name", "artist_name", "album_name", "record_no")
    }
    for i, item in enumerate(items):
        track = item.get("track") or {}
        if not track.get("id") or not item.get("played_at"):
            continue
        rows["ended_at"].append(api_time(item["played_at"]))
        rows["ms_played"].append(int(track.get("duration_ms") or 0))
        rows["track_id"].append(track["id"])
        rows["track_name"].append(track.get("name"))
        rows["artist_name"].append(((track.get("artists") or [{}])[0]).get("name"))
        rows["album_name"].append((track.get("album") or {}).get("name"))
        rows["record_no"].append(i)
    n = len(rows["ended_at"])
    table = pa.table(
        {
            "user_key": pa.array([user_key] * n, pa.int64()),
            "ended_at": pa.array(rows["ended_at"], TS),
            "ts_precision": pa.array(["ms"] * n, pa.string()),
            "ms_played": pa.array(rows["ms_played"], pa.int64()),
            "content_type": pa.array(["track"] * n, pa.string()),
            "media_type": pa.array(["audio"] * n, pa.string()),
            "track_id": pa.array(rows["track_id"], pa.string()),
            "track_name": pa.array(rows["track_name"], pa.string()),
            "artist_name": pa.array(rows["artist_name"], pa.string()),
            "album_name": pa.array(rows["album_name"], pa.string()),
            "source": pa.array([SOURCE] * n, pa.string()),
            "batch_id": pa.array([batch_id] * n, pa.string()),
            "record_no": pa.array(rows["record_no"], pa.int32()),
        }
    )
    return conform(table)


def track_row(t: dict[str, Any], now: datetime) -> dict[str, Any]:
    album = t.get("album") or {}
    artists = t.get("artists") or []
    return {
        "track_id": t["id"],
        "track_name": t.get("name"),
        "album_id": album.get("id"),
        "album_name": album.get("name"),
        "artist_ids": ";".join(a.get("id") or "" for a in artists),
        "artist_names": ";".join(a.get("name") or "" for a in artists),
        "duration_ms": t.get("duration_ms"),
        "explicit": t.get("explicit"),
        "popularity": t.get("popularity"),
        "isrc": (t.get("external_ids") or {}).get("isrc"),
        "release_date": album.get("release_date"),
        "release_date_precision": album.get("release_date_precision"),
        "fetched_at": now,
    }


def artist_row(a: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "artist_id": a["id"],
        "artist_name": a.get("name"),
        "genres": ";".join(a["genres"]) if "genres" in a else None,
        "popularity": a.get("popularity"),
        "followers": (a.get("followers") or {}).get("total"),
        "fetched_at": now,
    }


def album_row(a: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "album_id": a["id"],
        "album_name": a.get("name"),
        "artist_id": ((a.get("artists") or [{}])[0]).get("id"),
        "release_date": a.get("release_date"),
        "release_date_precision": a.get("release_date_precision"),
        "album_type": a.get("album_type"),
        "total_tracks": a.get("total_tracks"),
        "fetched_at": now,
    }


def features_row(f: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"track_id": f["id"], **{k: f.get(k) for k in FEATURE_FIELDS}, "fetched_at": now}
