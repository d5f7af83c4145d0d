"""`tunelake export listenbrainz`: the listener's plays as ListenBrainz listens, written to a file that imports back,
and sent with liblistenbrainz to a local fake of the submit-listens endpoint that enforces a rate limit."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from listenbrainz_fake import FakeListenBrainz
from tests.conftest import require
from typer.testing import CliRunner

from tunelake.cli import app
from tunelake.curate.ingest import import_paths
from tunelake.curate.listens_export import export_listenbrainz
from tunelake.curate.plays import read_user_plays
from tunelake.errors import InputError, SourceError
from tunelake.lake import manifest
from tunelake.workspace import open_workspace

DATA = Path(__file__).resolve().parents[2] / "data" / "scrobbles"


@pytest.fixture
def mixed(tmp_path, real_dir):
    """A listener with a real Spotify history (endsong.json) and real ListenBrainz listens."""
    ws = open_workspace(tmp_path / "ws")
    endsong = real_dir / "CandidlyRed__spotify" / "endsong.json"
    import_paths(ws, [str(endsong), str(DATA / "listenbrainz" / "listenbrainz_listens.jsonl")], "me")
    records = json.loads(endsong.read_bytes())
    streams = {(r["ts"], r["spotify_track_uri"], r["ms_played"]) for r in records
               if r["spotify_track_uri"] and r["ms_played"] >= 30_000 and r["master_metadata_track_name"]}
    return ws, records, len(streams) + 2


def test_file_has_every_stream_and_imports_back(tmp_path, mixed):
    ws, records, expected = mixed
    out = tmp_path / "listens.json"
    r = export_listenbrainz(ws, "me", out=out)
    body = json.loads(out.read_text())
    assert body["listen_type"] == "import"
    assert r.listens == len(body["payload"]) == expected
    payload = body["payload"]
    assert [x["listened_at"] for x in payload] == sorted(x["listened_at"] for x in payload)
    # a Spotify play as ListenBrainz's importer writes it: listened_at = ts (the end), ms_played, its Spotify id
    first = min((r for r in records if r["spotify_track_uri"] and r["ms_played"] >= 30_000),
                key=lambda r: r["ts"])
    end = int(datetime.strptime(first["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    hit = [x for x in payload if x["listened_at"] == end
           and x["track_metadata"]["track_name"] == first["master_metadata_track_name"]]
    assert len(hit) == 1
    info = hit[0]["track_metadata"]["additional_info"]
    assert info["spotify_id"] == "https://open.spotify.com/track/" + first["spotify_track_uri"].split(":")[2]
    assert info["music_service"] == "spotify.com" and info["submission_client"] == "tunelake"
    assert info["ms_played"] == first["ms_played"]
    # the ListenBrainz listens keep their MBIDs
    lb = [json.loads(x) for x in (DATA / "listenbrainz" / "listenbrainz_listens.jsonl").read_text().splitlines()]
    got = {x["listened_at"]: x["track_metadata"]["additional_info"] for x in payload}
    for listen in lb:
        assert got[listen["listened_at"]]["recording_mbid"] == listen["track_metadata"]["mbid_mapping"][
            "recording_mbid"]
    text = out.read_text()
    for pii in ("ip_addr", "user_agent", "username", first["username"]):
        assert pii not in text
    # the file imports back into another workspace as the same listens, with the same times
    ws2 = open_workspace(tmp_path / "ws2")
    s = import_paths(ws2, [str(out)], "again").as_dict()
    assert s["accepted"] == expected and s["quarantined"] == {}
    back = read_user_plays(ws2.lake, manifest.user_key_for("again"))
    orig = read_user_plays(ws.lake, manifest.user_key_for("me"))
    spotify = [r for r in orig.to_pylist() if r["source"] == "extended" and r["content_type"] == "track"
               and r["track_name"] and r["ms_played"] >= 30_000]
    starts = {(r["ended_at"] - timedelta(milliseconds=r["ms_played"]), r["track_name"]) for r in spotify}
    assert starts == {(r["listened_at"], r["track_name"]) for r in back.to_pylist() if r["source"] == "listenbrainz"
                      and json.loads(r["additional_info"]).get("ms_played") is not None}
    # and into the first workspace again: every listen is a playback already there
    again = import_paths(ws, [str(out)], "me").as_dict()
    assert again["accepted"] == 0 and again["merged"] + again["duplicates"] == expected


def test_submit_honours_the_rate_limit(tmp_path, mixed, monkeypatch):
    require("liblistenbrainz")
    ws, _, expected = mixed
    with FakeListenBrainz(limit=3, window_s=1.0) as fake:
        t0 = time.monotonic()
        r = export_listenbrainz(ws, "me", submit=True, token=fake.token, server=fake.url, batch=50)
        elapsed = time.monotonic() - t0
    batches = -(-expected // 50)
    assert r.submitted == expected == len(fake.listens)
    assert r.requests == batches + 1  # + the token check
    assert fake.rejected_429 == 0  # it waited when the server said no requests were left
    windows = -(-(batches + 1) // 3)
    assert elapsed >= (windows - 1) * 1.0 - 0.05 and r.waited_s > 0
    assert Counter(json.dumps(x, sort_keys=True) for x in fake.listens).most_common(1)[0][1] == 1


def test_submit_with_a_bad_token_says_so(mixed):
    require("liblistenbrainz")
    ws, _, _ = mixed
    with FakeListenBrainz() as fake, pytest.raises(SourceError, match="token"):
        export_listenbrainz(ws, "me", submit=True, token="wrong", server=fake.url)
    assert fake.listens == []


def test_cli(tmp_path, mixed, monkeypatch):
    require("liblistenbrainz")
    ws, _, expected = mixed
    out = tmp_path / "cli.json"
    runner = CliRunner()
    res = runner.invoke(app, ["--workspace", str(ws.root), "export", "listenbrainz", "--user", "me", "--out",
                              str(out)])
    assert res.exit_code == 0, res.output
    assert len(json.loads(out.read_text())["payload"]) == expected
    with FakeListenBrainz() as fake:
        monkeypatch.setenv("LISTENBRAINZ_TOKEN", fake.token)
        res = runner.invoke(app, ["--workspace", str(ws.root), "export", "listenbrainz", "--user", "me",
                                  "--submit", "--server", fake.url])
        assert res.exit_code == 0, res.output
        assert len(fake.listens) == expected
    res = runner.invoke(app, ["--workspace", str(ws.root), "export", "listenbrainz", "--user", "nobody"])
    assert isinstance(res.exception, InputError) and res.exception.exit_code == 2  # main() maps it to exit 2
    assert "no listener 'nobody'" in str(res.exception)
