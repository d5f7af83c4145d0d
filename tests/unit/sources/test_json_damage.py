"""Files that are not quite JSON: NaN/Infinity written by a tool (orjson refuses the whole file) and files re-saved
in another encoding. A record holding NaN is quarantined and the other records kept, on every parser; a file that
is not UTF-8 fails with the offset of its first invalid byte."""

from __future__ import annotations

import json
from datetime import datetime

import orjson
import pytest

from tunelake.errors import InputError
from tunelake.sources.account import parse_account
from tunelake.sources.export import parse_extended
from tunelake.sources.library import parse_library, parse_playlists

NOW = datetime(2026, 7, 1)


def _extended(n: int = 6) -> list[dict]:
    return [{"ts": f"2023-10-02T23:4{i}:10Z", "platform": "android", "ms_played": 1000 + i,
             "master_metadata_track_name": "Café", "spotify_track_uri": f"spotify:track:{'a' * 21}{i}",
             "shuffle": False, "skipped": None} for i in range(n)]


def _with_constants(records: list, constants: dict[tuple[int, str], str]) -> bytes:
    """JSON text with some values replaced by bare constants (NaN, Infinity, …) that JSON does not have."""
    marks = {}
    for (no, f), text in constants.items():
        marks[f"@@{no}:{f}@@"] = text
        node = records[no]
        *path, last = f.split(".")
        for p in path:
            node = node[p]
        node[last] = f"@@{no}:{f}@@"
    data = json.dumps(records, ensure_ascii=False)
    for mark, text in marks.items():
        data = data.replace(f'"{mark}"', text)
    return data.encode()


@pytest.mark.parametrize("fast", [True, False])
def test_nan_and_infinity_in_extended_history_quarantine_only_their_records(fast):
    records = _extended(8)
    records[6]["extra"] = {"inner": None}
    data = _with_constants(records, {(1, "ms_played"): "NaN", (3, "shuffle"): "Infinity",
                                     (4, "platform"): "-Infinity", (5, "ms_played"): "1e999",
                                     (6, "extra.inner"): "NaN"})
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data)
    p = parse_extended(data, "Streaming_History_Audio_2023.json", now=NOW, fast=fast)
    assert p.read == 8
    assert [(q["record_no"], q["reason"]) for q in p.quarantine] == [
        (1, "wrong_type"), (3, "wrong_type"), (4, "wrong_type"), (5, "wrong_type"), (6, "wrong_type")]
    messages = [q["message"] for q in p.quarantine]
    assert messages[0] == "field 'ms_played' should be int, got NaN"
    assert messages[1] == "field 'shuffle' should be bool, got Infinity"
    assert messages[2] == "field 'platform' should be str, got -Infinity"
    assert messages[3] == "field 'ms_played' should be int, got a number out of range (1e999)"
    assert messages[4] == "field 'extra' holds NaN, which JSON does not allow"
    assert p.rows["record_no"].to_pylist() == [0, 2, 7]
    assert p.rows["ms_played"].to_pylist() == [1000, 1002, 1007]
    assert p.rows["track_name"].to_pylist() == ["Café"] * 3
    # The quarantined record is kept as written, and can be written as a JSON line (as the importer does).
    assert orjson.dumps(p.quarantine[0]["record"], default=str).count(b'"NaN"') == 1


def test_nan_in_account_data_quarantines_only_its_record():
    records = [{"endTime": f"2023-10-02 23:4{i}", "artistName": "A", "trackName": "T", "msPlayed": i}
               for i in range(4)]
    data = _with_constants(records, {(2, "msPlayed"): "NaN"})
    p = parse_account(data, "StreamingHistory_music_0.json", now=NOW)
    assert p.read == 4 and p.rows["ms_played"].to_pylist() == [0, 1, 3]
    assert [(q["record_no"], q["reason"], q["message"]) for q in p.quarantine] == [
        (2, "wrong_type", "field 'msPlayed' should be int, got NaN")]


def test_nan_in_the_library_quarantines_only_its_entry():
    doc = {"tracks": [{"artist": "A", "album": "B", "track": "T1", "uri": "spotify:track:" + "a" * 22},
                      {"artist": "A", "album": "B", "track": "T2", "uri": "spotify:track:" + "b" * 22,
                       "rating": "@@"}],
           "artists": [{"name": "A", "uri": "spotify:artist:" + "c" * 22}]}
    data = json.dumps(doc).replace('"@@"', "NaN").encode()
    p = parse_library(data, "YourLibrary.json")
    assert p.read == 3 and p.rows.num_rows == 2
    assert [(q["record_no"], q["reason"], q["message"]) for q in p.quarantine] == [
        (1, "wrong_type", "field 'rating' of a 'tracks' entry holds NaN, which JSON does not allow")]


def test_nan_in_a_playlist_quarantines_only_its_item():
    track = {"trackName": "T", "artistName": "A", "albumName": "B", "trackUri": "spotify:track:" + "a" * 22}
    doc = {"playlists": [{"name": "P", "lastModifiedDate": "2024-06-28", "items": [
        {"track": track, "addedDate": "2024-06-28"},
        {"track": {**track, "trackName": "@@"}, "addedDate": "2024-06-28"},
        {"track": track, "addedDate": "2024-06-29"}]}]}
    data = json.dumps(doc).replace('"@@"', "Infinity").encode()
    p = parse_playlists(data, "Playlist1.json")
    assert p.read == 3 and p.rows["position"].to_pylist() == [0, 2]
    assert [(q["record_no"], q["reason"], q["message"]) for q in p.quarantine] == [
        (1, "wrong_type", "item 1 of playlist 'P': field 'track.trackName' should be str, got Infinity")]


def _late_latin1(records: list) -> bytes:
    """UTF-8 JSON whose last "Café" is re-encoded in Latin-1: the one bad byte sits near the end."""
    data = json.dumps(records, ensure_ascii=False).encode()
    at = data.rindex("Café".encode())
    return data[:at] + "Café".encode("latin-1") + data[at + len("Café".encode()):]


LATIN1 = ('[{"endTime": "2023-10-02 23:43", "artistName": "Beyonc\u00e9", "trackName": "T", "msPlayed": 1}]'
          .encode("latin-1"))
AT = LATIN1.index(b"\xe9")


@pytest.mark.parametrize(("parser", "data", "offset"), [
    (lambda d: parse_account(d, "StreamingHistory_music_0.json"), LATIN1, AT),
    (lambda d: parse_account(d, "StreamingHistory_music_0.json"), b"\xef\xbb\xbf" + LATIN1, AT + 3),
    (lambda d: parse_extended(d, "Streaming_History_Audio_2023.json"), _late_latin1(_extended(300)), None),
    (lambda d: parse_extended(d, "Streaming_History_Audio_2023.json", fast=False), _late_latin1(_extended(3)),
     None),
    (lambda d: parse_library(d, "YourLibrary.json"), '{"tracks": [{"track": "Beyonc\u00e9"}]}'.encode("cp1252"),
     None),
    (lambda d: parse_playlists(d, "Playlist1.json"), '{"playlists": [{"name": "Caf\u00e9"}]}'.encode("latin-1"),
     None),
])
def test_a_file_that_is_not_utf8_names_the_first_bad_byte(parser, data, offset):
    offset = data.index(b"\xe9") if offset is None else offset
    assert offset > 0
    with pytest.raises(InputError) as err:
        parser(data)
    message = err.value.one_line()
    assert f"not UTF-8 text: invalid byte 0xe9 at byte {offset} " in message
    assert "Spotify writes UTF-8" in message and "\n" not in message


def test_a_lone_surrogate_quarantines_its_record():
    records = _extended(3)
    data = json.dumps(records).replace("Caf\\u00e9", "Caf\\ud800", 1).encode()
    for fast in (True, False):
        p = parse_extended(data, "Streaming_History_Audio_2023.json", now=NOW, fast=fast)
        assert p.rows["record_no"].to_pylist() == [1, 2]
        assert [(q["record_no"], q["reason"]) for q in p.quarantine] == [(0, "wrong_type")]
        assert "master_metadata_track_name" in p.quarantine[0]["message"]
        assert "surrogate" in p.quarantine[0]["message"]
