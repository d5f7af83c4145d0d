"""The row model every source produces and the curated zone stores: Arrow schemas of the curated tables (the
contract between the sources and the warehouse models), how a table is made to fit one (`conform`), and the
playback id (`play_id_sql`) — the same playback read from two files, or the same file twice, gets the same id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

TS = pa.timestamp("ms")

PLAYS = pa.schema(
    [
        ("user_key", pa.int64()),
        ("play_id", pa.string()),  # filled by curate.plays (hash of user, end time, item, ms_played)
        ("ended_at", TS),  # UTC, the export's ts (end of playback)
        ("ts_precision", pa.string()),  # s | min (account data) | ms (API)
        ("ms_played", pa.int64()),
        ("content_type", pa.string()),  # track | episode | audiobook | unknown
        ("media_type", pa.string()),  # audio | video
        ("track_id", pa.string()),
        ("track_name", pa.string()),
        ("artist_name", pa.string()),
        ("album_name", pa.string()),
        ("episode_id", pa.string()),
        ("episode_name", pa.string()),
        ("show_name", pa.string()),
        ("audiobook_id", pa.string()),
        ("audiobook_title", pa.string()),
        ("chapter_id", pa.string()),
        ("chapter_title", pa.string()),
        ("reason_start", pa.string()),
        ("reason_end", pa.string()),
        ("shuffle", pa.bool_()),
        ("skipped", pa.bool_()),
        ("offline", pa.bool_()),
        ("offline_at", TS),
        ("incognito", pa.bool_()),
        ("platform", pa.string()),
        ("conn_country", pa.string()),
        ("ip_addr", pa.string()),  # null, or a salted hash with --pii pseudonymize
        ("user_agent", pa.string()),  # idem
        ("username", pa.string()),  # idem
        ("source", pa.string()),  # extended | account | api | listenbrainz | lastfm | maloja
        ("batch_id", pa.string()),
        ("record_no", pa.int32()),
        # Scrobbles (SCROBBLE_SOURCES) only: the scrobble's own time, which the services define as the START of
        # the track (ended_at is listened_at + the track's length when the source gives it, else listened_at), and
        # what the scrobbling service knows about the recording.
        ("listened_at", TS),
        ("recording_mbid", pa.string()),
        ("release_mbid", pa.string()),
        ("artist_mbids", pa.string()),  # ';'-joined, in credit order
        ("additional_info", pa.string()),  # the source's extra fields as JSON text (ListenBrainz additional_info)
    ]
)

# Play sources that are scrobbles: no ms_played (the scrobbler already applied the scrobble rule: at least half
# the track or 4 minutes), a start time instead of an end time, names (and MBIDs) instead of Spotify ids.
SCROBBLE_SOURCES = ("listenbrainz", "lastfm", "maloja")
# Play sources whose rows know their track only by names until curate.resolve finds the id.
NAME_ONLY_SOURCES = ("account", *SCROBBLE_SOURCES)

USERS = pa.schema(
    [("user_key", pa.int64()), ("handle", pa.string()), ("timezone", pa.string())]
)

CATALOG_TRACKS = pa.schema(
    [
        ("track_id", pa.string()),
        ("track_name", pa.string()),
        ("album_id", pa.string()),
        ("album_name", pa.string()),
        ("artist_id", pa.string()),  # primary artist
        ("artist_name", pa.string()),
        ("release_date", pa.date32()),
        ("release_date_precision", pa.string()),
        ("duration_ms", pa.int32()),
        ("explicit", pa.bool_()),
        ("popularity", pa.int16()),
        ("isrc", pa.string()),
        ("danceability", pa.float64()),
        ("energy", pa.float64()),
        ("key", pa.int16()),
        ("loudness", pa.float64()),
        ("mode", pa.int16()),
        ("speechiness", pa.float64()),
        ("acousticness", pa.float64()),
        ("instrumentalness", pa.float64()),
        ("liveness", pa.float64()),
        ("valence", pa.float64()),
        ("tempo", pa.float64()),
        ("time_signature", pa.int16()),
        ("source", pa.string()),
    ]
)

CATALOG_TRACK_ARTISTS = pa.schema(
    [("track_id", pa.string()), ("artist_id", pa.string()), ("artist_name", pa.string()), ("position", pa.int16())]
)

CATALOG_ARTISTS = pa.schema(
    [
        ("artist_id", pa.string()),
        ("artist_name", pa.string()),
        ("popularity", pa.int16()),
        ("followers", pa.int64()),
        ("is_surrogate", pa.bool_()),
    ]
)

CATALOG_ARTIST_GENRES = pa.schema([("artist_id", pa.string()), ("genre", pa.string()), ("genre_rank", pa.int16())])

CATALOG_ALBUMS = pa.schema(
    [
        ("album_id", pa.string()),
        ("album_name", pa.string()),
        ("artist_id", pa.string()),
        ("release_date", pa.date32()),
        ("release_date_precision", pa.string()),
        ("album_type", pa.string()),
    ]
)

SAVED_TRACKS = pa.schema(
    [("user_key", pa.int64()), ("track_id", pa.string()), ("track_name", pa.string()), ("artist_name", pa.string()),
     ("album_name", pa.string()), ("saved_at", TS), ("source", pa.string()),
     # Everything a library holds (YourLibrary.json): track | album | artist | show | episode | banned_track |
     # banned_artist. track_id is set for tracks only; item_id is the Spotify id (or a surrogate) of any item;
     # artist_name is the artist or publisher, album_name the album or show.
     ("item_type", pa.string()), ("item_id", pa.string()), ("item_name", pa.string()), ("batch_id", pa.string())]
)

PLAYLIST_ITEMS = pa.schema(
    [
        ("user_key", pa.int64()),
        ("playlist_id", pa.string()),
        ("playlist_name", pa.string()),
        ("position", pa.int32()),
        ("item_type", pa.string()),  # track | episode | audiobook | local
        ("track_id", pa.string()),
        ("track_name", pa.string()),
        ("artist_name", pa.string()),
        ("album_name", pa.string()),
        ("added_at", TS),
        ("source", pa.string()),
        ("item_id", pa.string()),  # track, episode or audiobook id (or a surrogate); track_id only for tracks
        ("playlist_modified", TS),  # the export's lastModifiedDate: the newest snapshot of a playlist wins
        ("batch_id", pa.string()),
    ]
)

TOP_ITEMS = pa.schema(
    [
        ("user_key", pa.int64()),
        ("snapshot_date", pa.date32()),
        ("time_range", pa.string()),
        ("item_type", pa.string()),
        ("rank", pa.int16()),
        ("item_id", pa.string()),
        ("item_name", pa.string()),
    ]
)

# The Web API's metadata caches (unpartitioned): one row per id, so nothing is fetched twice.
API_TRACKS = pa.schema(
    [
        ("track_id", pa.string()),
        ("track_name", pa.string()),
        ("album_id", pa.string()),
        ("album_name", pa.string()),
        ("artist_ids", pa.string()),  # ';'-joined, in credit order
        ("artist_names", pa.string()),
        ("duration_ms", pa.int64()),
        ("explicit", pa.bool_()),
        ("popularity", pa.int16()),  # null when the app may not see it (development mode)
        ("isrc", pa.string()),
        ("release_date", pa.string()),  # as Spotify gives it: YYYY, YYYY-MM or YYYY-MM-DD
        ("release_date_precision", pa.string()),
        ("fetched_at", TS),
    ]
)
API_ARTISTS = pa.schema(
    [
        ("artist_id", pa.string()),
        ("artist_name", pa.string()),
        ("genres", pa.string()),  # ';'-joined; null when unknown (development mode)
        ("popularity", pa.int16()),
        ("followers", pa.int64()),
        ("fetched_at", TS),
    ]
)
API_ALBUMS = pa.schema(
    [
        ("album_id", pa.string()),
        ("album_name", pa.string()),
        ("artist_id", pa.string()),  # primary artist
        ("release_date", pa.string()),
        ("release_date_precision", pa.string()),
        ("album_type", pa.string()),
        ("total_tracks", pa.int32()),
        ("fetched_at", TS),
    ]
)
FEATURE_FIELDS = (
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
)
API_AUDIO_FEATURES = pa.schema(
    [("track_id", pa.string())]
    + [(f, pa.int16() if f in ("key", "mode", "time_signature") else pa.float64()) for f in FEATURE_FIELDS]
    + [("fetched_at", TS)]
)
API_TABLES: dict[str, pa.Schema] = {
    "top_items": TOP_ITEMS,
    "saved_tracks": SAVED_TRACKS,
    "playlist_items": PLAYLIST_ITEMS,
    "api_tracks": API_TRACKS,
    "api_artists": API_ARTISTS,
    "api_albums": API_ALBUMS,
    "api_audio_features": API_AUDIO_FEATURES,
}

# name → schema, for the curated views the warehouse models read (empty tables when nothing was imported yet).
CURATED: dict[str, pa.Schema] = {
    "plays": PLAYS,
    "saved_tracks": SAVED_TRACKS,
    "playlist_items": PLAYLIST_ITEMS,
    "top_items": TOP_ITEMS,
    "users": USERS,
    "catalog_tracks": CATALOG_TRACKS,
    "catalog_track_artists": CATALOG_TRACK_ARTISTS,
    "catalog_artists": CATALOG_ARTISTS,
    "catalog_artist_genres": CATALOG_ARTIST_GENRES,
    "catalog_albums": CATALOG_ALBUMS,
}


def conform(table: pa.Table, schema: pa.Schema = PLAYS) -> pa.Table:
    """Reorder/complete columns to the curated schema (missing columns become nulls)."""
    cols = []
    have = {f.name: f.type for f in table.schema}
    for f in schema:
        if f.name in have:
            col = table[f.name]
            cols.append(col if have[f.name] == f.type else col.cast(f.type))  # a cast that changes nothing costs too
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


# The item part of the playback id: the Spotify id when there is one, else the names the export carries.
def play_id_sql(user: str = "CAST(user_key AS VARCHAR)") -> str:
    """The playback id as SQL over the curated column names; `user` is the user part (a column, or a literal when
    the parse computes the ids of one user's file in the same pass)."""
    return f"""
md5(concat_ws('|', {user}, CAST(epoch_ms(CAST(ended_at AS TIMESTAMP)) AS VARCHAR),
    coalesce(track_id, episode_id, chapter_id, audiobook_id,
             'n:' || coalesce(track_name, '') || '/' || coalesce(artist_name, '') || '/' || coalesce(episode_name, ''),
             ''),
    CAST(ms_played AS VARCHAR)))
"""


@dataclass
class Parsed:
    """Normalised rows of one file plus what was rejected and why."""

    rows: pa.Table
    read: int
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    unknown_fields: set[str] = field(default_factory=set)
    file_format: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def quarantine_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for q in self.quarantine:
            counts[q["reason"]] = counts.get(q["reason"], 0) + 1
        return counts
