"""Web API plays and scrobbles of the same listener: a stored scrobble gives way to the API row of its playback,
and a pull after a Last.fm import counts those plays once. The scrobbles are the ones a scrobbler would have sent
for the listener's synthetic export: every second stream, started at ts − ms_played, off by up to ±20 s, names
as Spotify gives them."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tunelake.curate import pull
from tunelake.curate.ingest import import_paths
from tunelake.curate.plays import read_user_plays
from tunelake.lake import manifest
from tunelake.sources.spotify import client
from tunelake.synthetic.server import FakeSpotify
from tunelake.workspace import Workspace

H = "listener-0001"


def _scrobbles(world: Path, handle: str, api_tracks: set[str]) -> list[tuple[str, str, int]]:
    out = []
    seen = set()
    for f in sorted((world / "exports" / handle).glob("**/Streaming_History_Audio_*.json")):
        for r in json.loads(f.read_bytes()):
            uri = r.get("spotify_track_uri")
            key = (r["ts"], uri, r["ms_played"])
            if not uri or r["ms_played"] < 30_000 or key in seen or uri.split(":")[2] not in api_tracks:
                continue
            seen.add(key)
            end = datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ")
            start = end - timedelta(milliseconds=r["ms_played"]) + timedelta(seconds=len(seen) * 7 % 41 - 20)
            if len(seen) % 2:
                out.append((r["master_metadata_album_artist_name"], r["master_metadata_track_name"],
                            int(start.replace(tzinfo=UTC).timestamp())))
    return out


def test_pull_after_lastfm_keeps_the_api_row(cfg: Workspace, server: FakeSpotify, world: Path, logged_in: str,
                                             tmp_path: Path) -> None:
    plays = server.world.listener(H).plays
    derived = _scrobbles(world, H, {tid for _, tid in plays})
    assert len(derived) > 20
    page = {"recenttracks": {"track": [{"artist": {"#text": a, "mbid": ""}, "name": t, "mbid": "",
                                        "album": {"#text": "", "mbid": ""}, "date": {"uts": str(ts)}}
                                       for a, t, ts in derived]}}
    f = tmp_path / "lastfm.json"
    f.write_text(json.dumps(page))
    first = import_paths(cfg, [str(f)], H).as_dict()
    assert first["accepted"] == len(derived)
    r = pull.pull(cfg, H, ["recent"], policy=client.RetryPolicy(sleep=lambda s: None))
    assert r.plays_read == len(plays)
    assert r.merged == len(derived)  # each replaced the stored scrobble of its playback
    rows = read_user_plays(cfg.lake, manifest.user_key_for(H))
    assert Counter(rows["source"].to_pylist()) == {"api": len(plays)}
