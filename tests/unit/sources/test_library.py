"""YourLibrary.json and PlaylistN.json parsers: both export generations (with and without URIs / addedDate)."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from tunelake.errors import InputError
from tunelake.sources.library import parse_library, parse_playlists
from tunelake.sources.names import is_surrogate


def test_library_new_export_with_uris():
    doc = {
        "tracks": [{"artist": "Noname", "album": "Telefone", "track": "Diddy Bop",
                    "uri": "spotify:track:7CRPXJt3IVC7V0VcM0PSQi"}],
        "albums": [{"artist": "PMJ", "album": "Ocean Avenue", "uri": "spotify:album:3gPqZ7sC9Mo8HLD7UdHi25"}],
        "shows": [{"name": "A Show", "publisher": "Pub", "uri": "spotify:show:7pfp4PIs0cqdaRsTdPqHn3"}],
        "episodes": [{"name": "Ep", "show": "A Show", "uri": "spotify:episode:3sG6mIjWpEB0XlBttn9O0b"}],
        "artists": [{"name": "24kGoldn", "uri": "spotify:artist:6fWVd57NKTalqvmjRd2t8Z"}],
        "bannedTracks": [], "bannedArtists": [], "other": [],
    }
    p = parse_library(orjson.dumps(doc), "YourLibrary.json")
    assert p.read == 5 and p.quarantine == []
    rows = {r["item_type"]: r for r in p.rows.to_pylist()}
    assert rows["track"]["track_id"] == rows["track"]["item_id"] == "7CRPXJt3IVC7V0VcM0PSQi"
    assert rows["album"]["item_id"] == "3gPqZ7sC9Mo8HLD7UdHi25" and rows["album"]["track_id"] is None
    assert (rows["episode"]["item_name"], rows["episode"]["album_name"]) == ("Ep", "A Show")
    assert rows["show"]["artist_name"] == "Pub"
    assert {r["source"] for r in p.rows.to_pylist()} == {"account"}


def test_library_old_export_without_uris():
    doc = {"tracks": [{"artist": "Drake", "album": "NWTS", "track": "The Language"}],
           "albums": [{"artist": "Drake", "album": "IYRTITL"}], "shows": [{"name": "HIBT", "publisher": "NPR"}],
           "surprise": [1]}
    p = parse_library(orjson.dumps(doc), "YourLibrary.json")
    rows = {r["item_type"]: r for r in p.rows.to_pylist()}
    assert rows["track"]["track_id"] is None  # resolved by name at import
    assert is_surrogate(rows["album"]["item_id"]) and is_surrogate(rows["show"]["item_id"])
    assert p.unknown_fields == {"surprise"}


def test_library_bad_entries_are_quarantined():
    doc = {"tracks": ["nope", {"artist": "A"}, {"track": "T", "uri": "spotify:album:xyz"},
                      {"track": "ok", "artist": "A"}], "artists": "not a list"}
    p = parse_library(orjson.dumps(doc), "YourLibrary.json")
    assert sorted(q["reason"] for q in p.quarantine) == ["bad_uri", "missing_field", "not_an_object", "wrong_type"]
    assert p.read == p.rows.num_rows + len(p.quarantine) == 5


def test_playlists_both_generations():
    doc = {"playlists": [
        {"name": "Summer", "lastModifiedDate": "2024-06-28", "description": None, "numberOfFollowers": 0, "items": [
            {"track": {"trackName": "Diddy Bop", "artistName": "Noname", "albumName": "Telefone",
                       "trackUri": "spotify:track:7CRPXJt3IVC7V0VcM0PSQi"},
             "episode": None, "audiobook": None, "localTrack": None, "addedDate": "2024-06-28"},
            {"track": None, "episode": {"episodeName": "E", "showName": "S",
                                        "episodeUri": "spotify:episode:3sG6mIjWpEB0XlBttn9O0b"},
             "audiobook": None, "localTrack": None, "addedDate": "2024-06-29"},
        ]},
        {"name": "Old", "lastModifiedDate": "2019-12-02", "description": None, "numberOfFollowers": 0, "items": [
            {"track": {"trackName": "gun smoke", "artistName": "21 Savage", "albumName": "i am > i was"},
             "episode": None, "localTrack": None},
        ]},
        {"name": "Summer", "lastModifiedDate": "2020-01-01", "items": []},
    ]}
    p = parse_playlists(orjson.dumps(doc), "Playlist1.json")
    rows = p.rows.to_pylist()
    assert p.read == 3 and len(rows) == 3 and p.quarantine == []
    a, e, old = rows
    assert (a["position"], a["item_type"], a["track_id"], a["added_at"]) == (
        0, "track", "7CRPXJt3IVC7V0VcM0PSQi", datetime(2024, 6, 28))
    assert (e["position"], e["item_type"], e["track_id"], e["item_id"]) == (
        1, "episode", None, "3sG6mIjWpEB0XlBttn9O0b")
    assert old["track_id"] is None and old["added_at"] is None and old["playlist_modified"] == datetime(2019, 12, 2)
    assert p.details == {"playlists": 3, "empty_playlists": 1}


def test_playlists_not_an_object_file_is_one_clear_error():
    with pytest.raises(InputError, match="playlists"):
        parse_playlists(b'[1, 2]', "Playlist1.json")
    with pytest.raises(InputError, match="truncated JSON"):
        parse_playlists(b'{"playlists": [', "Playlist1.json")
