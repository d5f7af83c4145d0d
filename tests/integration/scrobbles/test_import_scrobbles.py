"""Scrobble imports on real public files (tests/data/scrobbles, see SOURCES.md): ListenBrainz, Last.fm, Maloja.

Every expected count comes from reading the same file with plain json/csv here, never from tunelake's output, and
every file must add up: read = accepted + duplicates + merged + quarantined.
"""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from tunelake.cli import app
from tunelake.curate.ingest import import_paths
from tunelake.curate.plays import read_user_plays
from tunelake.lake import manifest
from tunelake.workspace import open_workspace

DATA = Path(__file__).resolve().parents[2] / "data" / "scrobbles"
LB = DATA / "listenbrainz" / "listenbrainz_listens.jsonl"
LB_MIXED = DATA / "listenbrainz" / "listenbrainz_mixed_validity.jsonl"
LASTFM_PAGE = DATA / "lastfm" / "recenttracks_page.json"
LASTFM_CSV = DATA / "lastfm" / "lastfm_to_csv.csv"
MALOJA = DATA / "maloja" / "maloja.json"
MALOJA_BAD = DATA / "maloja" / "maloja_malformed.json"


def adds_up(summary) -> None:
    for f in summary.files:
        assert f.read == f.accepted + f.duplicates + f.merged + f.quarantined_total, f.origin


def plays_of(ws, handle: str):
    return read_user_plays(ws.lake, manifest.user_key_for(handle))


def test_listenbrainz_export_zip(tmp_path):
    """The zip ListenBrainz sends: listens/YYYY/M.jsonl beside user.json, feedback.jsonl, pinned_recording.jsonl."""
    lines = [json.loads(x) for x in LB.read_text().splitlines() if x.strip()]
    z = tmp_path / "listenbrainz_someone_1749000000.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("user.json", json.dumps({"user_id": 1, "username": "someone"}))
        zf.writestr("feedback.jsonl", "")
        zf.writestr("pinned_recording.jsonl", "")
        zf.write(LB, "listens/2025/6.jsonl")
    ws = open_workspace(tmp_path / "ws")
    s = import_paths(ws, [str(z)], "me")
    adds_up(s)
    assert [f.kind for f in s.files] == ["listenbrainz"]  # user.json and the rest are not listens
    assert s.as_dict()["accepted"] == len(lines) == 2
    rows = plays_of(ws, "me").sort_by("ended_at").to_pylist()
    first = min(lines, key=lambda r: r["listened_at"])
    meta = first["track_metadata"]
    assert rows[0]["source"] == "listenbrainz"
    assert rows[0]["ms_played"] is None  # a scrobble does not say how long it played
    # These listens are ListenBrainz's own from Spotify (its connector: submission_client "listenbrainz",
    # music_service "spotify.com"): their time is Spotify's end of playback, their start unknown.
    assert (meta["additional_info"]["submission_client"], meta["additional_info"]["music_service"]) == (
        "listenbrainz", "spotify.com")
    assert rows[0]["ended_at"] == datetime.fromtimestamp(first["listened_at"], UTC).replace(tzinfo=None)
    assert rows[0]["listened_at"] is None
    assert rows[0]["track_name"] == meta["track_name"] and rows[0]["artist_name"] == meta["artist_name"]
    assert rows[0]["album_name"] == meta["release_name"]
    assert rows[0]["recording_mbid"] == meta["mbid_mapping"]["recording_mbid"]
    assert rows[0]["artist_mbids"] == ";".join(meta["mbid_mapping"]["artist_mbids"])
    assert rows[0]["track_id"] == meta["additional_info"]["spotify_id"].rsplit("/", 1)[1]
    assert json.loads(rows[0]["additional_info"]) == meta["additional_info"]
    assert rows[0]["username"] is None
    again = import_paths(ws, [str(z)], "me")  # the same bytes again: nothing added
    assert again.as_dict()["already_imported"] == 1 and plays_of(ws, "me").num_rows == 2


def test_listenbrainz_bad_records_are_quarantined_beside_good_ones(tmp_path):
    raw = [json.loads(x) for x in LB_MIXED.read_text().splitlines() if x.strip()]
    good = [r for r in raw if r["track_metadata"]["artist_name"] and r["track_metadata"]["track_name"]]
    ws = open_workspace(tmp_path)
    s = import_paths(ws, [str(LB_MIXED)], "me")
    adds_up(s)
    d = s.as_dict()
    assert d["read"] == len(raw) == 5
    assert d["accepted"] == len(good) == 3
    assert d["quarantined"] == {"missing_field": len(raw) - len(good)}
    q = [orjson.loads(x) for f in ws.lake.glob("quarantine/listenbrainz/me/*.jsonl") for x in
         ws.lake.read_bytes(f).splitlines()]
    assert sorted(x["record_no"] for x in q) == [1, 3]
    assert {x["message"] for x in q} == {"field 'track_metadata.artist_name' is empty",
                                         "field 'track_metadata.track_name' is empty"}


def test_lastfm_json_page(tmp_path):
    page = json.loads(LASTFM_PAGE.read_text())
    tracks = page["recenttracks"]["track"]
    ws = open_workspace(tmp_path)
    s = import_paths(ws, [str(LASTFM_PAGE)], "me")
    adds_up(s)
    assert s.as_dict()["accepted"] == len(tracks) == 10
    rows = plays_of(ws, "me")
    assert set(rows["source"].to_pylist()) == {"lastfm"}
    got = sorted((int(r["listened_at"].replace(tzinfo=UTC).timestamp()), r["artist_name"], r["track_name"],
                  r["album_name"]) for r in rows.to_pylist())
    want = sorted((int(t["date"]["uts"]), t["artist"]["#text"], t["name"], t["album"]["#text"]) for t in tracks)
    assert got == want
    assert set(rows["release_mbid"].to_pylist()) == {t["album"]["mbid"] for t in tracks}
    assert rows["recording_mbid"].null_count == rows.num_rows  # the page's track mbids are all ""
    assert all(p == "s" for p in rows["ts_precision"].to_pylist())
    # "listener" (the scrubbed Last.fm user name) is nowhere in the curated rows
    assert not any("listener" in json.dumps(r, default=str) for r in rows.to_pylist())


def test_lastfm_now_playing_and_wrong_types(tmp_path):
    """The 'now playing' entry is not a scrobble; a number where Last.fm writes a string is refused, not read."""
    page = json.loads(LASTFM_PAGE.read_text())
    tracks = page["recenttracks"]["track"]
    tracks.insert(0, {**{k: v for k, v in tracks[0].items() if k != "date"}, "@attr": {"nowplaying": "true"}})
    tracks[3]["date"]["uts"] = int(tracks[3]["date"]["uts"])
    tracks[4]["name"] = 5
    f = tmp_path / "page.json"
    f.write_text(json.dumps([page]))  # an array of pages, as backup tools save them
    ws = open_workspace(tmp_path / "ws")
    s = import_paths(ws, [str(f)], "me")
    adds_up(s)
    d = s.as_dict()
    assert d["read"] == 11
    assert d["accepted"] == 8
    assert d["quarantined"] == {"not_a_scrobble": 1, "wrong_type": 2}


def test_lastfm_to_csv(tmp_path):
    rows_csv = list(csv.reader(LASTFM_CSV.open()))
    ws = open_workspace(tmp_path)
    s = import_paths(ws, [str(LASTFM_CSV)], "me")
    adds_up(s)
    assert s.as_dict()["accepted"] == len(rows_csv) == 2
    rows = plays_of(ws, "me").sort_by("listened_at").to_pylist()
    want = sorted((datetime.strptime(r[3], "%d %b %Y %H:%M"), r[0], r[1], r[2]) for r in rows_csv)
    assert [(r["listened_at"], r["artist_name"], r["album_name"], r["track_name"]) for r in rows] == want
    assert {r["ts_precision"] for r in rows} == {"min"}


def test_lastfm_csv_bad_rows(tmp_path):
    f = tmp_path / "scrobbles.csv"
    f.write_text(LASTFM_CSV.read_text() + "Artist Only,,,31 Feb 2021 10:00\nA,B,C\n,Album,Track,01 Jan 2021 10:00\n"
                 'Quoted,Album,"Track, with comma","02 Jan 2021, 10:00"\n')
    ws = open_workspace(tmp_path / "ws")
    s = import_paths(ws, [str(f)], "me")
    adds_up(s)
    d = s.as_dict()
    assert (d["read"], d["accepted"]) == (6, 3)
    assert d["quarantined"] == {"missing_field": 2, "wrong_columns": 1}  # empty track; 3 fields; empty artist


def test_maloja_backup(tmp_path):
    doc = json.loads(MALOJA.read_text())
    ws = open_workspace(tmp_path)
    s = import_paths(ws, [str(MALOJA), str(MALOJA_BAD)], "me")
    adds_up(s)
    bad = json.loads(MALOJA_BAD.read_text())["scrobbles"]
    d = s.as_dict()
    assert d["read"] == len(doc["scrobbles"]) + len(bad) == 5
    assert d["accepted"] == len(doc["scrobbles"])
    assert d["quarantined"] == {"missing_field": len(bad)}
    rows = {r["track_name"]: r for r in plays_of(ws, "me").to_pylist()}
    for sc in doc["scrobbles"]:
        r = rows[sc["track"]["title"]]
        assert r["source"] == "maloja" and r["artist_name"] == sc["track"]["artists"][0]
        assert r["album_name"] == sc["track"]["album"]["albumtitle"]
        assert r["listened_at"] == datetime.fromtimestamp(sc["time"], UTC).replace(tzinfo=None)
        length = sc["track"]["length"]
        assert (r["ended_at"] - r["listened_at"]).total_seconds() == (length or 0)
        assert json.loads(r["additional_info"]).get("duration") == sc["duration"]


def test_renamed_files_are_recognised_by_content(tmp_path):
    names = {LB: "a.jsonl", LASTFM_PAGE: "b.json", LASTFM_CSV: "c.csv", MALOJA: "d.json"}
    for src, name in names.items():
        (tmp_path / name).write_bytes(src.read_bytes())
    (tmp_path / "notes.csv").write_text("x,y\n1,2\n")  # a CSV that is no scrobble file: not read
    ws = open_workspace(tmp_path / "ws")
    s = import_paths(ws, [str(tmp_path)], "me")
    assert sorted(f.kind for f in s.files) == ["lastfm_csv", "lastfm_json", "listenbrainz", "maloja"]
    assert s.as_dict()["accepted"] == 2 + 10 + 2 + 2
    src = pc.value_counts(plays_of(ws, "me")["source"]).to_pylist()
    assert {x["values"]: x["counts"] for x in src} == {"listenbrainz": 2, "lastfm": 12, "maloja": 2}


def test_one_listen_sent_to_two_services_is_one_playback(tmp_path):
    """The same scrobbles as a Last.fm JSON page and as a lastfm-to-csv file (minutes only): one playback each."""
    page = json.loads(LASTFM_PAGE.read_text())
    tracks = page["recenttracks"]["track"]
    f = tmp_path / "same.csv"
    with f.open("w", newline="") as fh:
        w = csv.writer(fh)
        for t in tracks:
            when = datetime.fromtimestamp(int(t["date"]["uts"]), UTC)
            w.writerow([t["artist"]["#text"].upper(), t["album"]["#text"], t["name"], f"{when:%d %b %Y %H:%M}"])
    for order in ([LASTFM_PAGE, f], [f, LASTFM_PAGE]):
        ws = open_workspace(tmp_path / f"ws{order[0].suffix}")
        first = import_paths(ws, [str(order[0])], "me")
        second = import_paths(ws, [str(order[1])], "me")
        adds_up(first)
        adds_up(second)
        assert first.as_dict()["accepted"] == len(tracks)
        assert second.as_dict()["merged"] == len(tracks) and second.as_dict()["accepted"] == 0
        assert plays_of(ws, "me").num_rows == len(tracks)


@pytest.mark.parametrize("bad,reason", [
    ('{"listened_at": "1748964167", "track_metadata": {"artist_name": "A", "track_name": "T"}}', "wrong_type"),
    ('{"listened_at": 1748964167.0, "track_metadata": {"artist_name": "A", "track_name": "T"}}', "wrong_type"),
    ('{"listened_at": 1748964167000, "track_metadata": {"artist_name": "A", "track_name": "T"}}', "ts_out_of_range"),
    ('{"listened_at": 1748964167, "track_metadata": {"artist_name": "A", "track_name": "T", '
     '"additional_info": {"recording_mbid": "not-an-mbid"}}}', "bad_mbid"),
    ('{"listened_at": 1748964167, "track_metadata": "A - T"}', "wrong_type"),
    ('{"listened_at": 1748964167, "track_metadata": ', "not_json"),
    ('{"listened_at": 5, "user_name": "someone", "track_metadata": {"artist_name": "A", "track_name": "T"}}',
     "ts_out_of_range"),
])
def test_listenbrainz_wrong_values_are_refused(tmp_path, bad, reason):
    f = tmp_path / "listens.jsonl"
    f.write_text(LB.read_text().rstrip("\n") + "\n" + bad + "\n")
    ws = open_workspace(tmp_path / "ws")
    s = import_paths(ws, [str(f)], "me")
    adds_up(s)
    assert s.as_dict()["quarantined"] == {reason: 1}
    assert s.as_dict()["accepted"] == 2
    q = b"".join(ws.lake.read_bytes(p) for p in ws.lake.glob("quarantine/listenbrainz/me/*.jsonl"))
    assert q and b"someone" not in q  # a record's user_name is scrubbed like Spotify's username


def test_a_broken_file_fails_alone_with_one_line(tmp_path):
    broken = tmp_path / "maloja_backup.json"
    broken.write_bytes(MALOJA.read_bytes()[:300])  # cut off mid-record
    ws = open_workspace(tmp_path / "ws")
    s = import_paths(ws, [str(broken), str(LB)], "me")
    assert [f.status for f in s.files] == ["failed", "imported"]
    assert len(s.errors) == 1 and "maloja_backup.json" in s.errors[0] and "truncated JSON" in s.errors[0]
    assert "\n" not in s.errors[0]
    assert s.as_dict()["accepted"] == 2  # the good file beside it is imported
    runner = CliRunner()
    res = runner.invoke(app, ["--workspace", str(tmp_path / "ws2"), "import", str(broken), str(LB), "--user", "me"])
    assert res.exit_code == 2


def test_listenbrainz_times_by_who_wrote_them(tmp_path):
    """A scrobbler's listened_at is the start; ListenBrainz's importer of Spotify histories writes Spotify's end
    and keeps its ms_played (so the start is end − ms_played)."""
    listen = json.loads(LB.read_text().splitlines()[0])
    at = listen["listened_at"]
    scrobbler = json.loads(json.dumps(listen))
    scrobbler["track_metadata"]["additional_info"] = {"submission_client": "Web Scrobbler", "duration_ms": 206760}
    importer = json.loads(json.dumps(listen))
    importer["listened_at"] = at + 3600
    importer["track_metadata"]["additional_info"] = {"submission_client": "ListenBrainz Archive Importer",
                                                     "music_service": "spotify.com", "ms_played": 200_000}
    f = tmp_path / "listens.jsonl"
    f.write_text(json.dumps(scrobbler) + "\n" + json.dumps(importer) + "\n")
    ws = open_workspace(tmp_path / "ws")
    assert import_paths(ws, [str(f)], "me").as_dict()["accepted"] == 2
    rows = plays_of(ws, "me").sort_by("ended_at").to_pylist()
    t = datetime.fromtimestamp(at, UTC).replace(tzinfo=None)
    assert rows[0]["listened_at"] == t and (rows[0]["ended_at"] - t).total_seconds() == 206.76
    t2 = datetime.fromtimestamp(at + 3600, UTC).replace(tzinfo=None)
    assert rows[1]["ended_at"] == t2 and (t2 - rows[1]["listened_at"]).total_seconds() == 200



def test_listenbrainz_broken_first_line(tmp_path):
    f = tmp_path / "6.jsonl"
    f.write_text('{"listened_at": 17489\n' + LB.read_text())
    ws = open_workspace(tmp_path / "ws")
    s = import_paths(ws, [str(f)], "me")
    adds_up(s)
    assert s.as_dict()["quarantined"] == {"not_json": 1} and s.as_dict()["accepted"] == 2
