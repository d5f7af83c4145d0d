"""Account-data parser: hand-written records, one per format quirk, with the rows and reasons they must give."""

from __future__ import annotations

from datetime import datetime

import orjson

from tunelake.sources.account import parse_account
from tunelake.sources.export import kind_from_name, sniff_kind


def _parse(records):
    return parse_account(orjson.dumps(records), "StreamingHistory_music_0.json", now=datetime(2026, 7, 1))


def test_music_rows_are_minute_precision_account_plays():
    p = _parse([
        {"endTime": "2023-10-02 23:43", "artistName": "Cults", "trackName": "Go Outside", "msPlayed": 51223},
        {"endTime": "2023-10-03 13:50", "artistName": "Alex Melton", "trackName": "Autumnal", "msPlayed": 189583},
    ])
    assert p.read == 2 and p.rows.num_rows == 2 and p.quarantine == []
    r = p.rows.to_pylist()[0]
    assert r["ended_at"] == datetime(2023, 10, 2, 23, 43)
    assert (r["ts_precision"], r["source"], r["content_type"]) == ("min", "account", "track")
    assert (r["artist_name"], r["track_name"], r["ms_played"], r["track_id"]) == ("Cults", "Go Outside", 51223, None)


def test_podcast_and_audiobook_rows_are_not_music():
    p = _parse([
        {"endTime": "2023-10-03 21:56", "podcastName": "Bobo's Void", "episodeName": "ep 1", "msPlayed": 1835},
        {"endTime": "2023-10-20 18:58", "audiobookName": "How to Keep House", "chapterName": "Ch 1",
         "authorName": "KC Davis", "msPlayed": 41192},
    ])
    ep, book = p.rows.to_pylist()
    assert (ep["content_type"], ep["show_name"], ep["episode_name"]) == ("episode", "Bobo's Void", "ep 1")
    assert (book["content_type"], book["audiobook_title"], book["chapter_title"]) == (
        "audiobook", "How to Keep House", "Ch 1")
    assert p.unknown_fields == set()


def test_bad_records_are_quarantined_with_reasons_and_the_rest_kept():
    p = _parse([
        {"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": 1},
        [1, 2],
        {"endTime": "yesterday", "artistName": "A", "trackName": "T", "msPlayed": 1},
        {"artistName": "A", "trackName": "T", "msPlayed": 1},
        {"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": -5},
        {"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": "12"},
        {"endTime": "1999-01-01 00:00", "artistName": "A", "trackName": "T", "msPlayed": 1},
        {"endTime": "2023-10-02 23:43:59", "artistName": "A", "trackName": "T", "msPlayed": 2, "extra": True},
    ])
    reasons = {q["record_no"]: q["reason"] for q in p.quarantine}
    assert reasons == {1: "not_an_object", 2: "bad_timestamp", 3: "missing_field", 4: "negative_ms_played",
                       5: "wrong_type", 6: "ts_out_of_range"}
    assert p.read == p.rows.num_rows + len(p.quarantine) == 8
    # A time with seconds is truncated to the minute like every account-data endTime.
    assert p.rows.to_pylist()[-1]["ended_at"] == datetime(2023, 10, 2, 23, 43)
    assert p.unknown_fields == {"extra"}


def test_kinds_by_name_and_by_content():
    assert kind_from_name("StreamingHistory_music_3.json") == "account_music"
    assert kind_from_name("StreamingHistory0.json") == "account_music"
    assert kind_from_name("StreamingHistory_podcast_0.json") == "account_podcast"
    assert kind_from_name("StreamingHistory_audiobook_0.json") == "account_audiobook"
    assert kind_from_name("YourLibrary.json") == "library"
    assert kind_from_name("Playlist12.json") == "playlist"
    head = b'[{"endTime" : "2023-10-03 21:56", "podcastName" : "x", "episodeName" : "y", "msPlayed" : 1}]'
    assert sniff_kind(head) == "account_podcast"
