"""The DuckDB fast path and the record-by-record path of the extended-history parser agree on any file: random
records of either layout, with random values of the wrong JSON type in random fields (strings for numbers, floats,
bools for ints, ints for bools, numbers for strings, objects, lists, nulls, huge integers, NaN), missing keys and
unknown keys, give the same accepted rows and the same quarantine (record numbers, reasons, messages)."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("hypothesis is not installed (pip install 'tunelake[dev]')", allow_module_level=True)

from tunelake.sources.export import EXTENDED_FIELDS, parse_extended
from tunelake.sources.extended_fast import parse_extended_fast

NOW = datetime(2026, 7, 1)
NEW = [k for k in EXTENDED_FIELDS if k not in ("username", "ip_addr_decrypted", "user_agent_decrypted")]
LEGACY = [k for k in EXTENDED_FIELDS if not k.startswith("audiobook") and k != "ip_addr"]

text = st.text(max_size=8)
good = {
    "str": st.one_of(st.none(), text, st.sampled_from(["1999", "[Live]", "{x}", "true", "NaN", "-1", "é", " "])),
    "int": st.one_of(st.none(), st.integers(0, 10**7), st.sampled_from([29_999, 30_000, 0, 2**63 - 1])),
    "bool": st.one_of(st.none(), st.booleans()),
}
special = {
    "ts": st.sampled_from(["2023-10-02T23:43:10Z", "2024-02-29T00:00:00Z", "2019-07-01T08:00:59Z",
                           "2023-02-30T00:00:00Z", "2023-10-02T23:43:60Z", "2023-1-2T3:4:5Z", "2023-10-02 23:43:10",
                           "2023-10-02T23:43:10Z ", "2001-01-01T00:00:00Z", "2100-01-01T00:00:00Z", "soon"]),
    "ms_played": st.one_of(st.integers(-5, 10**7), st.sampled_from([29_999, 30_000])),
    "spotify_track_uri": st.one_of(st.none(), st.sampled_from(["spotify:track:4wBqdAvau413qIyO1Pstmi",
                                                               "spotify:track:", "spotify:album:x", "x"])),
    "spotify_episode_uri": st.one_of(st.none(), st.just("spotify:episode:3sG6mIjWpEB0XlBttn9O0b"),
                                     st.just("spotify:show:x")),
    "skipped": st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1])),
    "offline_timestamp": st.one_of(st.none(), st.sampled_from([0, 1_700_000_000, 1_700_000_000_000])),
}
wrong = st.one_of(
    st.sampled_from(["300000", "true", "", "yes", "1.5"]), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([29999.6, 1.5, 1e30, -0.0, 1.0, 0.0]), st.booleans(), st.integers(-3, 3),
    st.sampled_from([2**63, -(2**63) - 1, 10**30]), st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.sampled_from(["a", "ts"]), st.one_of(st.none(), st.integers(0, 2), text), max_size=2),
    st.none(),
)


@st.composite
def history(draw):
    keys = draw(st.sampled_from([NEW, LEGACY]))
    n = draw(st.integers(1, 12))
    records = []
    for _ in range(n):
        records.append({k: draw(special.get(k, good[EXTENDED_FIELDS[k]])) for k in keys})
    for _ in range(draw(st.integers(0, 4))):  # values of the wrong type
        r = draw(st.sampled_from(records))
        r[draw(st.sampled_from(keys))] = draw(wrong)
    if draw(st.booleans()):  # a missing key, an unknown key
        r = draw(st.sampled_from(records))
        r.pop(draw(st.sampled_from(keys)), None)
        if draw(st.booleans()):
            draw(st.sampled_from(records))["new_field"] = draw(st.one_of(text, wrong))
    indent = draw(st.sampled_from([None, 2]))
    return records, json.dumps(records, indent=indent, ensure_ascii=draw(st.booleans())).encode()


def _quarantine(p):
    return [(q["record_no"], q["reason"], q["message"]) for q in p.quarantine]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history())
def test_fast_and_exact_paths_accept_and_quarantine_the_same_records(case):
    records, data = case
    fast = parse_extended(data, "Streaming_History_Audio_2024.json", now=NOW, fast=True)
    exact = parse_extended(data, "Streaming_History_Audio_2024.json", now=NOW, fast=False)
    assert fast.read == exact.read == len(records)
    assert _quarantine(fast) == _quarantine(exact)
    assert fast.read == fast.rows.num_rows + len(fast.quarantine)
    assert fast.unknown_fields == exact.unknown_fields
    assert fast.file_format == exact.file_format
    assert fast.rows.column_names == exact.rows.column_names
    for col in exact.rows.column_names:
        assert fast.rows[col].to_pylist() == exact.rows[col].cast(fast.rows[col].type).to_pylist(), col


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([NEW, LEGACY]), st.lists(st.fixed_dictionaries({}), min_size=1, max_size=8), st.data())
def test_well_typed_files_stay_on_the_fast_path(keys, shells, data):
    """A file with nothing of the wrong type is read by DuckDB, not handed to the slow path (the checks that catch
    wrong types must not fire on strings that merely look like numbers or lists)."""
    records = [{k: data.draw(special.get(k, good[EXTENDED_FIELDS[k]])) for k in keys} for _ in shells]
    raw = json.dumps(records, ensure_ascii=data.draw(st.booleans())).encode()
    parsed = parse_extended_fast(raw, "Streaming_History_Audio_2024.json", EXTENDED_FIELDS, now=NOW)
    assert parsed is not None
    exact = parse_extended(raw, "Streaming_History_Audio_2024.json", now=NOW, fast=False)
    assert _quarantine(parsed) == _quarantine(exact)
    for col in exact.rows.column_names:
        assert parsed.rows[col].to_pylist() == exact.rows[col].cast(parsed.rows[col].type).to_pylist(), col
