"""Enrichment from the Web API: every track, album and artist a listener's data mentions that the metadata cache
does not know yet, and audio features where the app may still read them. Development-mode apps get 403 on batch
metadata and audio features: that is remembered (rechecked weekly) and single-item calls take over."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from tunelake.curate import plays as curated_plays
from tunelake.lake import manifest, zones
from tunelake.lake.manifest import utcnow
from tunelake.lake.store import Lake
from tunelake.sources.spotify.client import ApiForbidden, ApiNotFound, SpotifyClient
from tunelake.sources.spotify.rows import album_row, artist_row, features_row, track_row
from tunelake.sources.types import API_TABLES, PLAYLIST_ITEMS, SAVED_TRACKS, conform

CAPABILITIES_CURSOR = "api-capabilities"
CAPABILITY_RECHECK = timedelta(days=7)


def _cache(lake: Lake, table: str) -> pa.Table:
    rel = zones.curated_file(table)
    schema = API_TABLES[table]
    return conform(lake.read_parquet(rel), schema) if lake.exists(rel) else schema.empty_table()


def _cache_add(lake: Lake, table: str, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    schema = API_TABLES[table]
    old = _cache(lake, table)
    new = pa.Table.from_pylist(rows, schema=schema)
    key = schema.names[0]
    have = set(old[key].to_pylist())
    new = new.filter(pa.array([k not in have for k in new[key].to_pylist()], pa.bool_()))
    if new.num_rows:
        lake.write_parquet(zones.curated_file(table), pa.concat_tables([old, new]))
    return new.num_rows


def capabilities(lake: Lake) -> dict[str, Any]:
    """What this app may use: `batch_metadata` and `audio_features` (False after a 403, rechecked weekly)."""
    caps = manifest.get_cursor(lake, CAPABILITIES_CURSOR) or {}
    checked = caps.get("checked_at")
    if checked and datetime.fromisoformat(checked) < utcnow() - CAPABILITY_RECHECK:
        return {}
    return caps


def _mark_unavailable(lake: Lake, feature: str, unavailable: list[str]) -> None:
    caps = manifest.get_cursor(lake, CAPABILITIES_CURSOR) or {}
    caps[feature] = False
    caps["checked_at"] = utcnow().isoformat()
    manifest.set_cursor(lake, CAPABILITIES_CURSOR, caps)
    if feature not in unavailable:
        unavailable.append(feature)


def _fetch(
    client: SpotifyClient,
    lake: Lake,
    unavailable: list[str],
    ids: list[str],
    batch_method: str,
    key: str,
    single_method: str,
    size: int,
) -> list[dict[str, Any]]:
    """Batch where allowed; on 403 mark batch metadata unavailable and fall back to single-item calls."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(ids) and capabilities(lake).get("batch_metadata", True):
        chunk = ids[i : i + size]
        try:
            out.extend(o for o in client.call(batch_method, chunk)[key] if o)
        except ApiForbidden:
            _mark_unavailable(lake, "batch_metadata", unavailable)
            break
        i += size
    for one in ids[i:]:
        try:
            out.append(client.call(single_method, one))
        except ApiNotFound:
            continue
    return out


def enrich(
    client: SpotifyClient,
    lake: Lake,
    user_key: int,
    unavailable: list[str],
    seen_tracks: dict[str, dict[str, Any]] | None = None,
    seen_artists: dict[str, dict[str, Any]] | None = None,
) -> dict[str, int]:
    """Describe every track, album and artist the user's data mentions and the cache does not know yet."""
    now = utcnow()
    counts = {"tracks": 0, "artists": 0, "albums": 0, "audio_features": 0}
    known_tracks = set(_cache(lake, "api_tracks")["track_id"].to_pylist())
    # Track objects embedded in responses describe themselves: no call needed.
    embedded = [
        track_row(t, now) for tid, t in (seen_tracks or {}).items() if tid not in known_tracks and t.get("album")
    ]
    counts["tracks"] += _cache_add(lake, "api_tracks", embedded)
    wanted: set[str] = set()
    plays = curated_plays.read_user_plays(lake, user_key)
    wanted.update(t for t in plays["track_id"].to_pylist() if t)
    for table, schema in (("saved_tracks", SAVED_TRACKS), ("playlist_items", PLAYLIST_ITEMS)):
        rows = curated_plays.read_user_table(lake, table, user_key, schema)
        wanted.update(t for t in rows["track_id"].to_pylist() if t)
    known_tracks = set(_cache(lake, "api_tracks")["track_id"].to_pylist())
    missing = sorted(wanted - known_tracks)
    if missing:
        fetched = _fetch(client, lake, unavailable, missing, "tracks", "tracks", "track", 50)
        counts["tracks"] += _cache_add(lake, "api_tracks", [track_row(t, now) for t in fetched if t.get("id")])
    tracks = _cache(lake, "api_tracks")
    # Artists: from the tracks' credits (and top artists, which arrive fully described).
    known_artists = set(_cache(lake, "api_artists")["artist_id"].to_pylist())
    embedded_artists = [artist_row(a, now) for aid, a in (seen_artists or {}).items() if aid not in known_artists]
    counts["artists"] += _cache_add(lake, "api_artists", embedded_artists)
    known_artists = set(_cache(lake, "api_artists")["artist_id"].to_pylist())
    artist_ids = {a for s in tracks["artist_ids"].to_pylist() if s for a in s.split(";") if a}
    missing = sorted(artist_ids - known_artists)
    if missing:
        fetched = _fetch(client, lake, unavailable, missing, "artists", "artists", "artist", 50)
        counts["artists"] += _cache_add(lake, "api_artists", [artist_row(a, now) for a in fetched if a.get("id")])
    known_albums = set(_cache(lake, "api_albums")["album_id"].to_pylist())
    missing = sorted({a for a in tracks["album_id"].to_pylist() if a} - known_albums)
    if missing:
        fetched = _fetch(client, lake, unavailable, missing, "albums", "albums", "album", 20)
        counts["albums"] += _cache_add(lake, "api_albums", [album_row(a, now) for a in fetched if a.get("id")])
    if capabilities(lake).get("audio_features", True):
        known = set(_cache(lake, "api_audio_features")["track_id"].to_pylist())
        missing = sorted(set(tracks["track_id"].to_pylist()) - known)
        rows = []
        try:
            for i in range(0, len(missing), 100):
                rows.extend(features_row(f, now) for f in client.call("audio_features", missing[i : i + 100]) if f)
        except ApiForbidden:
            _mark_unavailable(lake, "audio_features", unavailable)
        counts["audio_features"] += _cache_add(lake, "api_audio_features", rows)
    else:
        unavailable.append("audio_features")
    if not capabilities(lake).get("batch_metadata", True) and "batch_metadata" not in unavailable:
        unavailable.append("batch_metadata")
    return counts
