"""Property tests over the export parsers: arbitrary records and damaged files never crash an import, and every
record read is accounted for (read = accepted + duplicates + merged + quarantined)."""

from __future__ import annotations

import json
import os

import orjson
import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip("hypothesis is not installed (pip install 'tunelake[dev]')", allow_module_level=True)

from tunelake.curate.ingest import import_paths
from tunelake.errors import InputError
from tunelake.sources.account import ACCOUNT_FIELDS, parse_account
from tunelake.sources.export import EXTENDED_FIELDS, parse_extended
from tunelake.sources.library import parse_library, parse_playlists
from tunelake.workspace import open_workspace

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
    st.sampled_from(["2023-10-02T23:43:10Z", "2023-10-02 23:43", "spotify:track:4wBqdAvau413qIyO1Pstmi",
                     "spotify:episode:3sG6mIjWpEB0XlBttn9O0b", "1999-01-01T00:00:00Z", "2100-01-01T00:00:00Z",
                     "2023-13-45T99:99:99Z", ""]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                             st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=6)


def records(fields: list[str]):
    keys = st.one_of(st.sampled_from(fields), st.text(max_size=6))
    good_int = st.integers(min_value=0, max_value=10**7)
    value = st.one_of(json_values, good_int)
    return st.lists(st.one_of(st.dictionaries(keys, value, max_size=len(fields) + 2), json_values), max_size=25)


def _check(parsed) -> None:
    assert parsed.read == parsed.rows.num_rows + len(parsed.quarantine)
    assert all(q["reason"] for q in parsed.quarantine)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(list(EXTENDED_FIELDS)))
def test_extended_parser_accounts_for_every_record(recs):
    _check(parse_extended(json.dumps(recs).encode(), "Streaming_History_Audio_2024.json"))


@SETTINGS
@given(records(list(ACCOUNT_FIELDS)))
def test_account_parser_accounts_for_every_record(recs):
    _check(parse_account(json.dumps(recs).encode(), "StreamingHistory_music_0.json"))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["tracks", "albums", "artists", "shows", "episodes", "bannedTracks",
                                        "other", "x"]),
                       st.one_of(st.lists(st.one_of(st.dictionaries(
                           st.sampled_from(["track", "artist", "album", "name", "uri", "show", "publisher", "q"]),
                           scalars, max_size=5), json_values), max_size=6), json_values), max_size=6))
def test_library_parser_accounts_for_every_item(doc):
    _check(parse_library(json.dumps(doc).encode(), "YourLibrary.json"))


item = st.fixed_dictionaries({}, optional={
    "track": st.one_of(st.none(), st.dictionaries(st.sampled_from(["trackName", "artistName", "albumName",
                                                                   "trackUri"]), scalars, max_size=4)),
    "episode": st.one_of(st.none(), st.dictionaries(st.sampled_from(["episodeName", "showName", "episodeUri"]),
                                                    scalars, max_size=3)),
    "localTrack": st.one_of(st.none(), st.dictionaries(st.sampled_from(["uri", "trackName"]), scalars)),
    "addedDate": scalars,
})


@SETTINGS
@given(st.lists(st.one_of(st.fixed_dictionaries({"name": scalars, "lastModifiedDate": scalars},
                                                optional={"items": st.one_of(st.lists(st.one_of(item, json_values),
                                                                                      max_size=5), json_values)}),
                          json_values), max_size=5))
def test_playlist_parser_accounts_for_every_item(playlists):
    _check(parse_playlists(json.dumps({"playlists": playlists}).encode(), "Playlist1.json"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.sampled_from([parse_extended, parse_account, parse_library, parse_playlists]))
def test_damaged_bytes_give_a_clear_error_or_a_result(data, parser):
    try:
        parsed = parser(data, "damaged.json")
    except InputError as exc:
        assert exc.one_line()
    else:
        _check(parsed)


VALID = orjson.dumps([{"endTime": "2023-10-02 23:43", "artistName": "A", "trackName": "T", "msPlayed": 1000},
                      {"endTime": "2023-10-02 23:44", "podcastName": "S", "episodeName": "E", "msPlayed": 5}] * 3)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=len(VALID)), extra=records(list(ACCOUNT_FIELDS)))
def test_whole_import_of_truncated_and_random_files_adds_up(tmp_path_factory, cut, extra):
    ws = tmp_path_factory.mktemp("prop")
    folder = ws / "in"
    folder.mkdir()
    (folder / "StreamingHistory_music_0.json").write_bytes(VALID[:cut])
    (folder / "StreamingHistory_music_1.json").write_bytes(json.dumps(extra).encode())
    (folder / "StreamingHistory_music_2.json").write_bytes(VALID)
    s = import_paths(open_workspace(ws / "w"), [str(folder)], "prop")
    for f in s.files:
        if f.status == "failed":
            assert f.error and f.read == 0
        else:
            assert f.read == f.accepted + f.duplicates + f.merged + f.quarantined_total
    d = s.as_dict()
    assert d["read"] == d["accepted"] + d["duplicates"] + d["merged"] + sum(d["quarantined"].values())
    assert (cut == len(VALID)) == (s.files[0].status != "failed")
