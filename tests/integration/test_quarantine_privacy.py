"""Quarantine keeps no personal data in clear: rejected records get the curated zone's PII treatment, name their
file relative to the import and their record number, carry the hash of the original record, and are 0600."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import orjson
import pytest

from tunelake.curate.ingest import import_paths
from tunelake.curate.raw import display_origin, read_raw
from tunelake.lake import manifest
from tunelake.lake.store import Lake
from tunelake.workspace import open_workspace

IP, IP_OLD, UA, NAME = "203.0.113.77", "198.51.100.9", "Spotify/8.9 iPhone15,2 secret-agent", "real.person.42"


def records() -> list[dict]:
    good = {"ts": "2024-03-01T10:00:00Z", "ms_played": 200000, "platform": "ios", "conn_country": "DE",
            "ip_addr": IP, "user_agent_decrypted": UA, "username": NAME,
            "master_metadata_track_name": "Song", "master_metadata_album_artist_name": "Band",
            "master_metadata_album_album_name": "Album", "spotify_track_uri": "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
            "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": False, "skipped": False,
            "offline": False, "offline_timestamp": 0, "incognito_mode": False}
    return [
        good,
        {**good, "ts": "2024-03-01T10:05:00Z", "ms_played": "lots"},  # wrong type
        {**good, "ts": "not a time"},  # bad timestamp
        {**good, "ts": "2024-03-01T10:10:00Z", "ms_played": -1},  # negative
    ]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads" / "my_spotify_data"
    (folder / "Spotify Extended Streaming History").mkdir(parents=True)
    (folder / "Spotify Extended Streaming History" / "Streaming_History_Audio_2024_0.json").write_text(
        json.dumps(records()))
    return folder


def quarantine_files(ws: Path) -> list[Path]:
    return sorted((ws / "lake" / "quarantine").rglob("*.jsonl"))


@pytest.mark.parametrize("policy", ["drop", "pseudonymize"])
def test_quarantined_records_hold_no_personal_data_in_clear(tmp_path, export, policy):
    ws = tmp_path / "ws"
    s = import_paths(open_workspace(ws), [str(export)], "alice", pii=policy)
    assert s.as_dict()["quarantined"] == {"wrong_type": 1, "bad_timestamp": 1, "negative_ms_played": 1}
    [qfile] = quarantine_files(ws)
    data = qfile.read_bytes()
    for secret in (IP, UA, NAME, str(tmp_path)):
        assert secret.encode() not in data, secret
    assert oct(os.stat(qfile).st_mode & 0o777) == "0o600"
    lines = [orjson.loads(x) for x in data.splitlines()]
    assert [q["record_no"] for q in lines] == [1, 2, 3]
    originals = records()
    for q in lines:
        assert q["file"] == "my_spotify_data/Spotify Extended Streaming History/Streaming_History_Audio_2024_0.json"
        # the hash finds the original among the raw file's records (the raw zone is where it lives)
        assert q["record_sha256"] == hashlib.sha256(
            orjson.dumps(originals[q["record_no"]], option=orjson.OPT_SORT_KEYS)).hexdigest()
        rec = q["record"]
        assert rec["master_metadata_track_name"] == "Song"  # the rest of the record is kept as received
        if policy == "drop":
            assert rec["ip_addr"] is None and rec["username"] is None and rec["user_agent_decrypted"] is None
        else:
            assert rec["ip_addr"] and rec["ip_addr"] != IP and len(rec["ip_addr"]) == 20
    lake = Lake(str(ws / "lake"))
    if policy == "pseudonymize":  # the same pseudonym as the curated row of the same IP
        plays = lake.read_parquet(next(r for r in lake.glob("curated/plays/*/data.parquet")))
        assert plays["ip_addr"].to_pylist() == [lines[0]["record"]["ip_addr"]]
    [batch] = manifest.list_batches(lake)
    raw = orjson.loads(read_raw(lake, batch.raw_path))  # the raw zone keeps the original, privately
    assert raw[1]["ip_addr"] == IP
    assert oct(os.stat(lake.path(batch.raw_path)).st_mode & 0o777) == "0o600"
    envelope = lake.read_json(batch.raw_path + ".envelope.json")
    assert not envelope["origin"].startswith("/") and str(tmp_path) not in json.dumps(envelope)


def test_legacy_ip_field_is_treated_too(tmp_path):
    rec = {"ts": "2019-03-01T10:00:00Z", "username": NAME, "platform": "x", "ms_played": "x",
           "conn_country": "DE", "ip_addr_decrypted": IP_OLD, "user_agent_decrypted": UA}
    f = tmp_path / "endsong_0.json"
    f.write_text(json.dumps([rec]))
    import_paths(open_workspace(tmp_path / "ws"), [str(f)], "bob")
    data = b"".join(p.read_bytes() for p in quarantine_files(tmp_path / "ws"))
    assert data and IP_OLD.encode() not in data and NAME.encode() not in data


def test_an_invalid_file_is_named_relative_to_the_import(tmp_path):
    f = tmp_path / "somewhere" / "Streaming_History_Audio_2024_0.json"
    f.parent.mkdir()
    f.write_text('[{"ts": "2024')
    s = import_paths(open_workspace(tmp_path / "ws"), [str(f)], "carol")
    assert s.errors
    data = b"".join(p.read_bytes() for p in quarantine_files(tmp_path / "ws"))
    assert b"invalid_file" in data and str(tmp_path).encode() not in data
    assert b"Streaming_History_Audio_2024_0.json" in data


def test_display_origin():
    assert display_origin("/home/me/dl/x.zip!Spotify Account Data/a.json", ["/home/me/dl/x.zip"]) == \
        "x.zip!Spotify Account Data/a.json"
    assert display_origin("/home/me/dl/export/sub/a.json", ["/home/me/dl/export/"]) == "export/sub/a.json"
    assert display_origin("a.json", ["a.json"]) == "a.json"
    assert display_origin("/elsewhere/b.json", ["/home/me"]) == "b.json"


def test_a_zip_member_is_named_inside_its_zip(tmp_path):
    z = tmp_path / "dl" / "my_spotify_data.zip"
    z.parent.mkdir()
    bad = records()[1]
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2024_0.json", json.dumps([bad]))
    import_paths(open_workspace(tmp_path / "ws"), [str(z)], "dave")
    [q] = [orjson.loads(x) for p in quarantine_files(tmp_path / "ws") for x in p.read_bytes().splitlines()]
    assert q["file"] == "my_spotify_data.zip!Spotify Extended Streaming History/Streaming_History_Audio_2024_0.json"
