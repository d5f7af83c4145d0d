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
    summaries = [import_paths(ws, [str(order[0])], "mixed")]
    build(ws)  # so that the second import is built incrementally on top of the first
    summaries.append(import_paths(ws, [str(order[1])], "mixed"))
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


def _lastfm_file(tmp_path: Path, name: str, scrobbles: list[tuple[str, str, int]], mbids: list[str] | None = None
                 ) -> Path:
    page = _page(scrobbles)
    for t, m in zip(page["recenttracks"]["track"], mbids or [], strict=False):
        t["mbid"] = m
    path = tmp_path / name
    path.write_text(json.dumps(page))
    return path


def test_the_rule_by_hand(tmp_path):
    """Tiny cases worked out by hand: a stream within the tolerance merges; a play under 30 s, a scrobble 91 s
    off, another track or another listener do not; a listen sent to two services under two spellings but one
    recording MBID is one playback."""
    ext = tmp_path / "Streaming_History_Audio_2023.json"
    base = {"platform": "android", "conn_country": "DE", "ip_addr": None, "master_metadata_album_album_name": "X",
            "episode_name": None, "episode_show_name": None, "spotify_episode_uri": None, "audiobook_title": None,
            "audiobook_uri": None, "audiobook_chapter_uri": None, "audiobook_chapter_title": None,
            "reason_start": "trackdone", "reason_end": "trackdone", "shuffle": False, "skipped": False,
            "offline": False, "offline_timestamp": 0, "incognito_mode": False}
    plays = [  # (end, ms_played, artist, track, id)
        ("2023-05-01T10:03:20Z", 200_000, "Daft Punk", "One More Time", "0DiWol3AO6WpXZgp0goxAV"),  # start 10:00:00
        ("2023-05-01T11:00:20Z", 20_000, "Daft Punk", "Aerodynamic", "1noRCUgl4nAxhAvYpHQWSC"),  # 20 s: no stream
        ("2023-05-01T12:03:20Z", 200_000, "Air", "La Femme d'Argent", "3hFJ5DRmPvAZTwwgBoMM9j"),  # start 12:00:00
    ]
    ext.write_text(json.dumps([{**base, "ts": e, "ms_played": ms, "master_metadata_album_artist_name": a,
                                "master_metadata_track_name": t, "spotify_track_uri": f"spotify:track:{i}"}
                               for e, ms, a, t, i in plays]))
    t0 = _epoch(datetime(2023, 5, 1, 10, 0, 0))
    scrobbles = [("daft punk", "One More Time", t0 + 85),  # 85 s off: merges
                 ("Daft Punk", "Aerodynamic", t0 + 3600),  # the 20-s play: stays
                 ("Air", "La Femme d'Argent", t0 + 7200 + 91),  # 91 s off: stays
                 ("Air", "Kelly Watch the Stars", t0 + 7200)]  # another track: stays
    ws = open_workspace(tmp_path / "ws")
    import_paths(ws, [str(ext)], "a")
    s = import_paths(ws, [str(_lastfm_file(tmp_path, "a.json", scrobbles))], "a").as_dict()
    assert (s["merged"], s["accepted"]) == (1, 3)
    other = import_paths(ws, [str(_lastfm_file(tmp_path, "b.json", scrobbles[:1]))], "b").as_dict()
    assert (other["merged"], other["accepted"]) == (0, 1)  # another listener's scrobble is theirs
    mbid = "c7d0bf6e-b2aa-4ffa-bded-2448415b39b0"
    lb = tmp_path / "listens.jsonl"
    lb.write_text(json.dumps({"listened_at": t0 + 7200 + 91, "track_metadata": {
        "artist_name": "AIR (French band)", "track_name": "La femme d'argent",
        "additional_info": {"recording_mbid": mbid}}}) + "\n")
    # ListenBrainz's Spotify connector writes the end (played_at), 3 s off here: matched by its end
    connector = tmp_path / "connector.jsonl"
    connector.write_text(json.dumps({"listened_at": t0 + 200 + 3, "track_metadata": {
        "artist_name": "Daft Punk", "track_name": "One More Time", "additional_info": {
            "submission_client": "listenbrainz", "music_service": "spotify.com",
            "spotify_id": "https://open.spotify.com/track/0DiWol3AO6WpXZgp0goxAV", "duration_ms": 320_000}}}) + "\n")
    ws3 = open_workspace(tmp_path / "ws3")
    import_paths(ws3, [str(ext)], "d")
    s3 = import_paths(ws3, [str(connector)], "d").as_dict()
    assert (s3["merged"], s3["accepted"]) == (1, 0)
    ws2 = open_workspace(tmp_path / "ws2")
    import_paths(ws2, [str(_lastfm_file(tmp_path, "c.json", scrobbles[2:3], [mbid]))], "c")
    s2 = import_paths(ws2, [str(lb)], "c").as_dict()
    assert (s2["merged"], s2["accepted"]) == (1, 0)


def test_a_lake_from_before_the_scrobble_columns_still_builds(tmp_path, endsong):
    path, records = endsong
    ws = open_workspace(tmp_path / "ws")
    import_paths(ws, [str(path)], "old")
    rels = ws.lake.glob("curated/plays/**/*.parquet")
    assert rels
    for rel in rels:  # as the import before this change wrote it
        t = ws.lake.read_parquet(rel)
        ws.lake.write_parquet(rel, t.drop_columns(["listened_at", "recording_mbid", "release_mbid",
                                                   "artist_mbids", "additional_info"]))
    build(ws)
    con = open_warehouse(ws)
    try:
        n = con.execute("SELECT count(*) FROM fact_play").fetchall()[0][0]
    finally:
        con.close()
    assert n == len({(r["ts"], r["spotify_track_uri"], r["ms_played"]) for r in records if r["spotify_track_uri"]})
