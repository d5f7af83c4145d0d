"""An extended-history file parsed in parts (`sources/extended_parts`) gives exactly what parsing it whole gives:
the same rows with the same record numbers, the same quarantine, unknown fields and layout — wherever the cuts
fall, whatever the records hold (bad records in any part, unknown keys, values of the wrong type that send a part
or the file to the exact path, objects nested in lists whose '},{' looks like a cut between records)."""

from __future__ import annotations

import json
import os
import random
from datetime import datetime

import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("hypothesis is not installed (pip install 'tunelake[dev]')", allow_module_level=True)

from tunelake.sources import extended_parts
from tunelake.sources.export import EXTENDED_FIELDS, parse_extended

NOW = datetime(2026, 7, 1)
NEW = [k for k in EXTENDED_FIELDS if k not in ("username", "ip_addr_decrypted", "user_agent_decrypted")]
LEGACY = [k for k in EXTENDED_FIELDS if not k.startswith("audiobook") and k != "ip_addr"]


def _record(rng: random.Random, keys: list[str], i: int) -> dict:
    r: dict = {k: None for k in keys}
    r["ts"] = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"
    r["ms_played"] = rng.randrange(0, 400_000)
    r["master_metadata_track_name"] = rng.choice(["One", "Two }, {", "1999", "Ünïcode", "x\ny"])
    r["master_metadata_album_artist_name"] = rng.choice(["A", "B", None])
    r["spotify_track_uri"] = f"spotify:track:{rng.randrange(10**6):022d}"
    r["platform"] = "ios"
    for k in ("shuffle", "skipped", "offline", "incognito_mode"):
        if k in r:
            r[k] = rng.random() < 0.5
    return r


damage = st.sampled_from(["none", "negative", "bad_ts", "bad_uri", "missing", "unknown", "nested", "wrong_type",
                          "legacy_mix"])


@st.composite
def history(draw):
    rng = random.Random(draw(st.integers(0, 2**32)))
    keys = draw(st.sampled_from([NEW, LEGACY]))
    records = [_record(rng, keys, i) for i in range(draw(st.integers(2, 60)))]
    for _ in range(draw(st.integers(0, 4))):
        kind, r = draw(damage), records[draw(st.integers(0, len(records) - 1))]
        if kind == "negative":
            r["ms_played"] = -5
        elif kind == "bad_ts":
            r["ts"] = "soon"
        elif kind == "bad_uri":
            r["spotify_track_uri"] = "spotify:album:x"
        elif kind == "missing":
            r.pop("ms_played", None)
        elif kind == "unknown":
            r["new_field"] = "x"
        elif kind == "nested":
            r["new_field"] = [{"a": 1}, {"b": [{"c": 2}, {"d": 3}]}]
        elif kind == "wrong_type":
            r["ms_played"] = "300000"
        elif kind == "legacy_mix":
            r["username"] = "someone"
    indent = draw(st.sampled_from([None, 1, 2, "\t"]))
    return records, json.dumps(records, indent=indent, ensure_ascii=draw(st.booleans())).encode()


def _same(a, b) -> None:
    assert a.read == b.read
    assert [(q["record_no"], q["reason"], q["message"], q["record"]) for q in a.quarantine] == \
        [(q["record_no"], q["reason"], q["message"], q["record"]) for q in b.quarantine]
    assert a.unknown_fields == b.unknown_fields
    assert a.file_format == b.file_format
    assert a.rows.schema == b.rows.schema
    assert a.rows.to_pylist() == b.rows.to_pylist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history(), st.integers(2, 5), st.integers(1, 400))
def test_a_file_parsed_in_parts_is_the_file_parsed_whole(case, parts, min_part):
    records, data = case
    whole = parse_extended(data, "Streaming_History_Audio_2024.json", now=NOW, user_key=3)
    jobs, finish = extended_parts.parse_in_parts(data, "Streaming_History_Audio_2024.json", parts, user_key=3,
                                                 now=NOW, min_part=min_part)
    got = finish([job() for job in jobs])
    _same(got, whole)
    assert got.read == len(records)
    if b"\n" in data and len(records) >= 2 * parts:  # room for every cut: the file was parsed in parts
        assert len(jobs) == min(parts, len(data) // min_part) >= 2


def test_cuts_fall_between_records_and_the_pieces_are_arrays_of_them():
    rng = random.Random(5)
    records = [_record(rng, NEW, i) for i in range(40)]
    data = json.dumps(records, indent=2).encode()
    cuts = extended_parts.cut_points(data, 4, min_part=100)
    assert cuts is not None and len(cuts) == 4
    pieces = [json.loads(extended_parts.piece(data, a, b)) for a, b in cuts]
    assert [r for p in pieces for r in p] == records
    assert all(len(p) >= 1 for p in pieces)
    # no white space with a newline between records, or too small a file: not cut
    assert extended_parts.cut_points(json.dumps(records).encode(), 4, min_part=100) is None
    assert extended_parts.cut_points(data, 4, min_part=len(data)) is None
    assert extended_parts.cut_points(data, 1, min_part=100) is None


def test_a_cut_between_nested_objects_is_refused_and_the_file_is_parsed_whole():
    """Every '},\\n{' of this file lies inside its one record's list: the parts do not parse, the whole file does."""
    rng = random.Random(9)
    records = [{**_record(rng, NEW, 0), "extra": [{"k": j} for j in range(60)]}]
    data = json.dumps(records, indent=2).encode()
    cuts = extended_parts.cut_points(data, 2, min_part=100)
    assert cuts is not None  # a cut was found ...
    with pytest.raises(json.JSONDecodeError):  # ... inside a record: the pieces are not JSON
        json.loads(extended_parts.piece(data, *cuts[0]))
    jobs, finish = extended_parts.parse_in_parts(data, "Streaming_History_Audio_2024.json", 2, now=NOW,
                                                 min_part=100)
    assert len(jobs) == 2 and [job() for job in jobs] == [None, None]
    _same(finish([None, None]), parse_extended(data, "Streaming_History_Audio_2024.json", now=NOW))
