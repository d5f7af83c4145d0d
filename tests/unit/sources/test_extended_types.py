"""Extended history with values of the wrong JSON type: both parsers (DuckDB fast path, record-by-record path)
quarantine exactly the same records with the same reasons and messages, and never convert a value."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tunelake.sources.export import EXTENDED_FIELDS, parse_extended
from tunelake.sources.extended_fast import parse_extended_fast

NOW = datetime(2026, 7, 1)
FILE = "Streaming_History_Audio_2022.json"


@pytest.fixture()
def records(real_dir):
    """The 35 records of a real 2024+ export (every record carries every key)."""
    path = real_dir / "Efrrowini__spotify-music-analysis" / FILE
    return json.loads(path.read_text(encoding="utf-8"))


def _both(data: bytes):
    return [parse_extended(data, FILE, now=NOW, fast=fast) for fast in (True, False)]


def _quarantine(parsed):
    return [(q["record_no"], q["reason"], q["message"]) for q in parsed.quarantine]


# record number → (field, value, message)
WRONG = {
    2: ("ms_played", "300000", "field 'ms_played' should be int, got str"),
    4: ("ms_played", 29999.6, "field 'ms_played' should be int, got float"),  # must not become a 30 s stream
    6: ("ms_played", 1.5, "field 'ms_played' should be int, got float"),
    8: ("ms_played", True, "field 'ms_played' should be int, got bool"),
    10: ("shuffle", 1, "field 'shuffle' should be bool, got int"),
    12: ("platform", 5, "field 'platform' should be str, got int"),
    14: ("offline", "true", "field 'offline' should be bool, got str"),
    16: ("master_metadata_track_name", ["a"], "field 'master_metadata_track_name' should be str, got list"),
    18: ("conn_country", {"c": "IN"}, "field 'conn_country' should be str, got dict"),
    20: ("skipped", 2, "field 'skipped' should be bool, got int"),
    22: ("skipped", 1.0, "field 'skipped' should be bool, got float"),
    24: ("ts", 1668261591, "field 'ts' should be str, got int"),
    26: ("offline_timestamp", "1668261591", "field 'offline_timestamp' should be int, got str"),
    28: ("incognito_mode", "yes", "field 'incognito_mode' should be bool, got str"),
    30: ("ip_addr", False, "field 'ip_addr' should be str, got bool"),
}


@pytest.mark.parametrize("layout", ["every record has every key", "one record lacks a key"])
def test_wrong_types_are_quarantined_alike_on_both_paths(records, layout):
    for no, (f, value, _) in WRONG.items():
        records[no][f] = value
    records[1]["skipped"] = 1  # 0/1 for skipped is how some export years write it: accepted as a bool
    records[3]["skipped"] = 0
    if layout == "one record lacks a key":
        del records[33]["audiobook_title"]  # takes the fast path off its one-pass read
    fast, exact = _both(json.dumps(records).encode())
    expected = [(no, "wrong_type", message) for no, (_, _, message) in sorted(WRONG.items())]
    assert _quarantine(fast) == _quarantine(exact) == expected
    assert fast.read == exact.read == 35
    assert fast.rows.num_rows == exact.rows.num_rows == 35 - len(WRONG)
    for col in exact.rows.column_names:
        assert fast.rows[col].to_pylist() == exact.rows[col].cast(fast.rows[col].type).to_pylist(), col
    by_no = {r["record_no"]: r for r in fast.rows.to_pylist()}
    assert (by_no[1]["skipped"], by_no[3]["skipped"]) == (True, False)
    assert by_no[0]["ms_played"] == records[0]["ms_played"]


@pytest.mark.parametrize(("value", "message"), [
    (123456789012345678901234567890, "got an integer out of range"),
    (2**63, "got an integer out of range"),  # one past the largest 64-bit signed integer
    (-(2**63) - 1, "got an integer out of range"),
    (1e30, "got float"),  # written as a float: it is one
])
@pytest.mark.parametrize("field", ["ms_played", "offline_timestamp"])
def test_huge_integers_are_reported_as_what_they_are(records, field, value, message):
    records[5][field] = value
    data = json.dumps(records).encode()
    fast, exact = _both(data)
    assert _quarantine(fast) == _quarantine(exact) == [(5, "wrong_type", f"field '{field}' should be int, {message}")]
    assert fast.rows.num_rows == exact.rows.num_rows == 34


def test_the_largest_64_bit_integers_are_kept(records):
    records[0]["offline_timestamp"] = 2**63 - 1
    records[1]["ms_played"] = 2**63 - 1
    fast, exact = _both(json.dumps(records).encode())
    assert fast.quarantine == exact.quarantine == []
    assert fast.rows["ms_played"].to_pylist()[1] == exact.rows["ms_played"].to_pylist()[1] == 2**63 - 1


def test_strings_that_look_like_other_json_values_stay_strings_on_the_fast_path(records):
    """The fast path looks twice at strings such as "1999" or "[Live]" (a number or list read as text looks
    the same); they are strings, so the file stays on the fast path and they are kept as written."""
    looks = ["1999", "-5", "[Live]", "{x}", "true", "false", "NaN", "inf", "Infinity", "null", " 7", "ÆON", "é"]
    for i, text in enumerate(looks):
        records[i]["master_metadata_track_name"] = text
        records[i]["platform"] = text
    records[20]["ip_addr"] = "2130706433"  # an IPv4 address written as one number is still a string here
    data = json.dumps(records).encode()
    parsed = parse_extended_fast(data, FILE, EXTENDED_FIELDS, now=NOW)
    assert parsed is not None and parsed.quarantine == []
    assert parsed.rows["track_name"].to_pylist()[: len(looks)] == looks
    assert parsed.rows["platform"].to_pylist()[: len(looks)] == looks


def test_a_null_required_field_is_wrong_type_and_a_missing_one_missing_on_both_paths(records):
    """Files whose records differ in their keys used to give `missing_field` for a null ts on the fast path."""
    records[3]["ts"] = None
    del records[4]["ms_played"]
    records[6]["ms_played"] = None
    fast, exact = _both(json.dumps(records).encode())
    assert _quarantine(fast) == _quarantine(exact) == [
        (3, "wrong_type", "field 'ts' is null"), (4, "missing_field", "field 'ms_played' is missing"),
        (6, "wrong_type", "field 'ms_played' is null")]


def test_bad_uri_messages_name_the_field_on_both_paths(records):
    records[2]["spotify_track_uri"] = "spotify:album:xyz"
    records[4]["spotify_episode_uri"] = "episode:xyz"
    fast, exact = _both(json.dumps(records).encode())
    assert _quarantine(fast) == _quarantine(exact) == [
        (2, "bad_uri", "field 'spotify_track_uri' is not a spotify:track:… URI"),
        (4, "bad_uri", "field 'spotify_episode_uri' is not a spotify:episode:… URI")]
