"""Arrow schemas of the curated tables, the contract between the sources and the warehouse models."""

from __future__ import annotations

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
        ("source", pa.string()),  # extended | account | api
        ("batch_id", pa.string()),
        ("record_no", pa.int32()),
    ]
)

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
