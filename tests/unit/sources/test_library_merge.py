"""Curated merges of library and playlist snapshots: union of saved items; newest playlist snapshot wins."""

from __future__ import annotations

import orjson
import pyarrow as pa

from tunelake.curate.library import merge_playlist_items, merge_saved
from tunelake.lake.store import Lake
from tunelake.sources.library import parse_library, parse_playlists


def _rows(parsed, batch: str):
    t = parsed.rows
    t = t.set_column(t.column_names.index("batch_id"), "batch_id", pa.array([batch] * t.num_rows, pa.string()))
    return t.set_column(t.column_names.index("user_key"), "user_key", pa.array([1] * t.num_rows, pa.int64()))


def _playlist(modified: str, tracks: list[str]) -> bytes:
    return orjson.dumps({"playlists": [{"name": "Mix", "lastModifiedDate": modified, "items": [
        {"track": {"trackName": t, "artistName": "A", "albumName": "B",
                   "trackUri": "spotify:track:" + t * 22}, "addedDate": modified} for t in tracks]}]})


def test_newest_playlist_snapshot_wins_in_any_order(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    old = _rows(parse_playlists(_playlist("2023-01-01", ["a", "b", "c"]), "Playlist1.json"), "old")
    new = _rows(parse_playlists(_playlist("2024-01-01", ["a", "d"]), "Playlist1.json"), "new")
    assert merge_playlist_items(lake, 1, new) == ({}, 0)
    dups, stale = merge_playlist_items(lake, 1, old)  # an older export imported later changes nothing
    assert dups == {"old": 3} and stale == 3
    stored = lake.read_parquet("curated/playlist_items/user_key=1/data.parquet")
    assert [t[0] for t in stored["track_id"].to_pylist()] == ["a", "d"]
    again, _ = merge_playlist_items(lake, 1, new)  # the same snapshot again: all duplicates
    assert again == {"new": 2}

    lake2 = Lake(str(tmp_path / "lake2"))
    merge_playlist_items(lake2, 1, old)
    dups, stale = merge_playlist_items(lake2, 1, new)  # newer after older: replaces the playlist
    assert stale == 0 and dups == {"new": 1}  # item 0 ('a') is unchanged, item 1 ('d') is new
    stored = lake2.read_parquet("curated/playlist_items/user_key=1/data.parquet")
    assert [t[0] for t in stored["track_id"].to_pylist()] == ["a", "d"]


def test_library_snapshots_are_a_union(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    one = {"tracks": [{"artist": "A", "album": "B", "track": "T1", "uri": "spotify:track:" + "1" * 22}]}
    two = {"tracks": [{"artist": "A", "album": "B", "track": "T1", "uri": "spotify:track:" + "1" * 22},
                      {"artist": "A", "album": "B", "track": "T2", "uri": "spotify:track:" + "2" * 22}],
           "artists": [{"name": "A", "uri": "spotify:artist:" + "3" * 22}]}
    assert merge_saved(lake, 1, _rows(parse_library(orjson.dumps(one), "YourLibrary.json"), "b1")) == {}
    assert merge_saved(lake, 1, _rows(parse_library(orjson.dumps(two), "YourLibrary.json"), "b2")) == {"b2": 1}
    stored = lake.read_parquet("curated/saved_tracks/user_key=1/data.parquet")
    assert sorted(zip(stored["item_type"].to_pylist(), stored["item_id"].to_pylist(), strict=True)) == [
        ("artist", "3" * 22), ("track", "1" * 22), ("track", "2" * 22)]
