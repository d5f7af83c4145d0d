"""A listener with Spotify data and a Last.fm history of the same years: no playback is counted twice.

The Spotify side is real (the fixtures' endsong.json and account-data export in shared/data/real); the Last.fm side
is written here as the user.getRecentTracks pages a scrobbler would have produced for those plays — every other
stream, started where Spotify says (ts − ms_played), off by up to ±20 s as real clocks are, with the artist's case
changed on some — plus scrobbles from before the Spotify history. The expected counts follow from that
construction, not from tunelake.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tunelake.curate.ingest import import_paths
from tunelake.curate.plays import read_user_plays
from tunelake.lake import manifest
from tunelake.pipeline import build
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import open_workspace

EXTRA = [("Kelpe", "Go Visible (Original Mix)", 1373621728), ("Amadou & Mariam", "Bozos (Album Version)",
                                                                 1373574098), ("Sweet Garden", "Altered State",
                                                                               1690348225)]


def _page(scrobbles: list[tuple[str, str, int]]) -> dict:
    return {"recenttracks": {"@attr": {"page": "1", "totalPages": "1", "user": "listener",
                                       "total": str(len(scrobbles)), "perPage": str(len(scrobbles))},
                             "track": [{"artist": {"mbid": "", "#text": a}, "album": {"mbid": "", "#text": ""},
                                        "name": t, "mbid": "", "streamable": "0",
                                        "date": {"uts": str(ts), "#text": ""}} for a, t, ts in scrobbles]}}


def _epoch(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def endsong(real_dir: Path) -> tuple[Path, list[dict]]:
    path = real_dir / "CandidlyRed__spotify" / "endsong.json"
    return path, json.loads(path.read_bytes())


def _scrobbles_of_extended(records: list[dict]) -> list[tuple[str, str, int]]:
    seen, streams = set(), []  # the file repeats a few playbacks (duplicates): a scrobbler scrobbled each once
    for r in records:
        key = (r["ts"], r["spotify_track_uri"], r["ms_played"])
        if r["spotify_track_uri"] and r["ms_played"] >= 30_000 and key not in seen:
            seen.add(key)
            streams.append(r)
    out = []
    for i, r in enumerate(streams[::2]):
        end = datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%SZ")
        start = end - timedelta(milliseconds=r["ms_played"]) + timedelta(seconds=(i * 7) % 41 - 20)
        artist = r["master_metadata_album_artist_name"]
        out.append((artist.upper() if i % 3 == 0 else artist, r["master_metadata_track_name"], _epoch(start)))
    # The jitter puts two plays of one track in the same second once; a scrobbler never sends that (both services
    # would keep one), so neither does this history.
    firsts = {(a.lower(), t, ts): (a, t, ts) for a, t, ts in reversed(out)}
    return sorted(firsts.values(), key=lambda x: x[2])


@pytest.mark.parametrize("lastfm_first", [False, True])
def test_spotify_and_lastfm_in_either_order_never_double_count(tmp_path, endsong, lastfm_first):
    path, records = endsong
    playbacks = len({(r["ts"], r["spotify_track_uri"] or r["spotify_episode_uri"], r["ms_played"]) for r in records})
    derived = _scrobbles_of_extended(records)
    page = tmp_path / "recenttracks.json"
    page.write_text(json.dumps(_page(derived + EXTRA)))
    ws = open_workspace(tmp_path / "ws")
    order = [page, path] if lastfm_first else [path, page]
    summaries = [import_paths(ws, [str(p)], "mixed") for p in order]
    for s in summaries:
        for f in s.files:
            assert f.read == f.accepted + f.duplicates + f.merged + f.quarantined_total
    by_source = {s.files[0].kind: s.as_dict() for s in summaries}
    lastfm, spotify = by_source["lastfm_json"], by_source["extended_legacy"]
    assert lastfm["read"] == len(derived) + len(EXTRA)
    if lastfm_first:  # every derived scrobble is replaced by the Spotify row of its playback
        assert lastfm["accepted"] == len(derived) + len(EXTRA)
        assert spotify["merged"] == len(derived) and spotify["replaced_account_rows"] == len(derived)
    else:  # every derived scrobble is a playback already there
        assert lastfm["merged"] == len(derived) and lastfm["accepted"] == len(EXTRA)
    rows = read_user_plays(ws.lake, manifest.user_key_for("mixed"))
    assert rows.num_rows == playbacks + len(EXTRA)
    assert Counter(rows["source"].to_pylist()) == {"extended": playbacks,
                                                   "lastfm": len(EXTRA)}
    assert sum(s.as_dict()["accepted"] for s in summaries) == rows.num_rows

    build(ws)
    con = open_warehouse(ws)
    try:
        facts = dict(con.execute("SELECT source, count(*) FROM fact_play GROUP BY ALL").fetchall())
        scrobbles = con.execute("SELECT bool_and(is_stream), count(ms_played), min(started_at) FROM fact_play "
                                "WHERE source = 'lastfm'").fetchall()[0]
    finally:
        con.close()
    assert facts["lastfm"] == len(EXTRA)
    assert scrobbles[0] is True and scrobbles[1] == 0  # every scrobble is a stream; none has an ms_played
    assert scrobbles[2] == datetime.fromtimestamp(min(t for _, _, t in EXTRA), UTC).replace(tzinfo=None)


def test_account_data_and_lastfm_never_double_count(tmp_path, real_dir):
    """Account data knows its end to the minute only: a scrobble of the same playback still merges."""
    path = real_dir / "hobbies-w-erin__Spotify-Account-Data" / "StreamingHistory_music_0.json"
    records = json.loads(path.read_bytes())[:600]
    acc = tmp_path / "StreamingHistory_music_0.json"
    acc.write_text(json.dumps(records))
    derived = []
    for i, r in enumerate(x for x in records if x["msPlayed"] >= 30_000):
        if i % 2:
            continue
        end = datetime.strptime(r["endTime"], "%Y-%m-%d %H:%M")
        start = end - timedelta(milliseconds=r["msPlayed"]) + timedelta(seconds=30 + (i * 7) % 41 - 20)
        derived.append((r["artistName"], r["trackName"], _epoch(start)))
    page = tmp_path / "recenttracks.json"
    page.write_text(json.dumps(_page(derived)))
    ws = open_workspace(tmp_path / "ws")
    a = import_paths(ws, [str(acc)], "acc").as_dict()
    b = import_paths(ws, [str(page)], "acc").as_dict()
    assert b["merged"] == len(derived) and b["accepted"] == 0
    rows = read_user_plays(ws.lake, manifest.user_key_for("acc"))
    assert rows.num_rows == a["accepted"]
    assert set(rows["source"].to_pylist()) == {"account"}
