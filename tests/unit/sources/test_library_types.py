"""Library, playlist and account-data values of the wrong type are quarantined as `wrong_type` (never read as
missing or as "no value"), and every entry read is counted: read = accepted + quarantined."""

from __future__ import annotations

from datetime import datetime

import orjson

from tunelake.sources.account import parse_account
from tunelake.sources.library import parse_library, parse_playlists

URI = "spotify:track:" + "a" * 22


def _reasons(p):
    return [(q["record_no"], q["reason"], q["message"]) for q in p.quarantine]


def test_library_entries_with_wrong_types_are_wrong_type():
    doc = {"artists": [{"name": 5}, {"name": "ok", "uri": 7}, {"name": "fine"}],
           "tracks": [{"track": "T", "artist": ["A"]}, {"track": "T", "artist": "A", "album": 1.5},
                      {"track": "T", "artist": "A", "uri": URI}]}
    p = parse_library(orjson.dumps(doc), "YourLibrary.json")
    assert _reasons(p) == [
        (0, "wrong_type", "field 'name' of a 'artists' entry should be str, got int"),
        (1, "wrong_type", "field 'uri' of a 'artists' entry should be str, got int"),
        (3, "wrong_type", "field 'artist' of a 'tracks' entry should be str, got list"),
        (4, "wrong_type", "field 'album' of a 'tracks' entry should be str, got float"),
    ]
    assert p.read == p.rows.num_rows + len(p.quarantine) == 6
    assert sorted(p.rows["item_name"].to_pylist()) == ["T", "fine"]


def test_a_playlist_that_cannot_be_read_is_quarantined_and_counted():
    item = {"track": {"trackName": "T", "artistName": "A", "albumName": "B", "trackUri": URI}}
    doc = {"playlists": [
        {"name": None, "items": "x"},
        {"name": "ok", "lastModifiedDate": "2024-06-28", "items": [item, item]},
        {"name": 5, "items": [item]},
        {"name": "bad date type", "lastModifiedDate": 20240628, "items": [item]},
        {"name": "bad date", "lastModifiedDate": "last tuesday", "items": [item]},
        {"name": "no items"},
        {"name": "null items", "items": None},
    ]}
    p = parse_playlists(orjson.dumps(doc), "Playlist1.json")
    assert _reasons(p) == [
        (0, "wrong_type", "playlist 0: field 'items' should be a list, got str"),
        (3, "wrong_type", "playlist 2: field 'name' should be str, got int"),
        (4, "wrong_type", "playlist 3 ('bad date type'): field 'lastModifiedDate' should be str, got int"),
        (5, "bad_timestamp", "playlist 4 ('bad date'): field 'lastModifiedDate' is not a date: 'last tuesday'"),
    ]
    assert p.rows["playlist_name"].to_pylist() == ["ok", "ok"]
    assert p.read == p.rows.num_rows + len(p.quarantine) == 6
    assert p.details == {"playlists": 7, "empty_playlists": 2}


def test_playlist_items_with_wrong_types_are_wrong_type():
    good = {"trackName": "T", "artistName": "A", "albumName": "B", "trackUri": URI}
    doc = {"playlists": [{"name": "P", "lastModifiedDate": "2024-06-28", "items": [
        {"track": "x"},
        {"track": {**good, "trackName": 5}},
        {"track": {**good, "artistName": True}},
        {"track": {**good, "trackUri": 7}},
        {"track": good, "addedDate": 20240628},
        {"track": good, "addedDate": "soon"},
        {"episode": {"episodeName": ["E"], "showName": "S"}},
        {"localTrack": {"trackName": {"n": 1}}},
        {"track": good, "addedDate": "2024-06-28"},
    ]}]}
    p = parse_playlists(orjson.dumps(doc), "Playlist1.json")
    assert _reasons(p) == [
        (0, "wrong_type", "item 0 of playlist 'P': field 'track' should be an object, got str"),
        (1, "wrong_type", "item 1 of playlist 'P': field 'track.trackName' should be str, got int"),
        (2, "wrong_type", "item 2 of playlist 'P': field 'track.artistName' should be str, got bool"),
        (3, "wrong_type", "item 3 of playlist 'P': field 'track.trackUri' should be str, got int"),
        (4, "wrong_type", "item 4 of playlist 'P': field 'addedDate' should be str, got int"),
        (5, "bad_timestamp", "item 5 of playlist 'P': field 'addedDate' is not a date: 'soon'"),
        (6, "wrong_type", "item 6 of playlist 'P': field 'episode.episodeName' should be str, got list"),
        (7, "wrong_type", "item 7 of playlist 'P': field 'localTrack.trackName' should be str, got dict"),
    ]
    assert p.rows["position"].to_pylist() == [8]
    assert p.read == 9


def test_account_data_null_required_field_is_wrong_type_like_the_extended_history():
    p = parse_account(orjson.dumps([
        {"endTime": None, "artistName": "A", "trackName": "T", "msPlayed": 1},
        {"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": None},
        {"artistName": "A", "trackName": "T", "msPlayed": 1},
        {"endTime": "2023-10-02 23:43", "artistName": 5, "trackName": "T", "msPlayed": 1},
        {"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": 2**63},
    ]), "StreamingHistory_music_0.json", now=datetime(2026, 7, 1))
    assert _reasons(p) == [
        (0, "wrong_type", "field 'endTime' is null"),
        (1, "wrong_type", "field 'msPlayed' is null"),
        (2, "missing_field", "field 'endTime' is missing"),
        (3, "wrong_type", "field 'artistName' should be str, got int"),
        (4, "wrong_type", "field 'msPlayed' should be int, got an integer out of range"),
    ]
    assert p.read == 5 and p.rows.num_rows == 0
