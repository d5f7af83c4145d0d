"""Tests for the deterministic synthetic Spotify world."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunelake.synthetic.world import generate_world, load_truth

REAL = Path("/work/shared/data/real")
REAL_2024 = REAL / "Efrrowini__spotify-music-analysis" / "Streaming_History_Audio_2024.json"
END = dt.date(2026, 6, 30)
AUDIO_RE = re.compile(r"^Streaming_History_Audio_(\d{4})(-(\d{4}))?_(\d+)\.json$")
VIDEO_RE = re.compile(r"^Streaming_History_Video_(\d{4})(-(\d{4}))?\.json$")
ID_RE = re.compile(r"^[0-9A-Za-z]{22}$")


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    calls = []
    summary = generate_world(
        out,
        users=12,
        days=30,
        seed=7,
        end_date=END,
        legacy_users=2,
        progress=lambda d, t: calls.append((d, t)),
    )
    return out, summary, calls


def _audio_rows(out: Path, handle: str) -> list[dict]:
    d = out / "exports" / handle / "Spotify Extended Streaming History"
    rows = []
    for f in sorted(d.glob("Streaming_History_Audio_*.json"), key=lambda p: int(AUDIO_RE.match(p.name)[4])):
        rows += json.loads(f.read_bytes())
    return rows


def _legacy_rows(out: Path, handle: str) -> list[dict]:
    rows = []
    for f in sorted((out / "exports" / handle / "MyData").glob("endsong_*.json")):
        rows += json.loads(f.read_bytes())
    return rows


def test_progress_and_summary_file(world):
    out, summary, calls = world
    assert calls == [(i, 12) for i in range(1, 13)]
    data = json.loads((out / "world.json").read_bytes())
    assert data["track_plays"] == summary.track_plays > 0
    assert data["users"] == 12 and data["days"] == 30 and data["seed"] == 7
    assert sorted(summary.per_user) == [f"listener-{i:04d}" for i in range(1, 13)]
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "world.json"]
    assert summary.files == len(files)
    assert summary.bytes_written == sum(p.stat().st_size for p in files)


def test_deterministic_same_seed_identical_bytes(world, tmp_path):
    out, _, _ = world
    again = tmp_path / "again"
    generate_world(again, users=12, days=30, seed=7, end_date=END, legacy_users=2)
    ha, hb = _tree_hashes(out), _tree_hashes(again)
    ja, jb = (json.loads((d / "world.json").read_bytes()) for d in (out, again))
    assert ja.pop("out") != jb.pop("out")  # the only difference: where it was written
    assert ja == jb
    del ha["world.json"], hb["world.json"]
    assert ha == hb and len(ha) > 40


def test_different_seed_differs(tmp_path):
    a = generate_world(tmp_path / "a", users=3, days=10, seed=1)
    b = generate_world(tmp_path / "b", users=3, days=10, seed=2)
    fa = _tree_hashes(tmp_path / "a")
    fb = _tree_hashes(tmp_path / "b")
    assert fa["catalog/tracks.csv"] != fb["catalog/tracks.csv"]
    assert a.total_ms_played != b.total_ms_played


def test_fields_match_real_2024_export(world):
    out, _, _ = world
    real = json.loads(REAL_2024.read_bytes())
    rows = _audio_rows(out, "listener-0001")
    assert rows
    real_keys = list(real[0].keys())
    for r in rows:
        assert list(r.keys()) == real_keys
    music = next(r for r in rows if r["spotify_track_uri"])
    real_music = next(r for r in real if r["spotify_track_uri"])
    for k, v in real_music.items():
        if v is not None and k != "offline_timestamp":
            assert type(music[k]) is type(v), k
    assert isinstance(music["ms_played"], int)
    # offline_timestamp in seconds (10 digits) in the new format
    ots = [r["offline_timestamp"] for r in rows if r["offline_timestamp"] is not None]
    assert ots and all(1_000_000_000 < x < 10_000_000_000 for x in ots)
    assert any(r["offline_timestamp"] is None for out_h in [rows] for r in out_h) or len(rows) < 200


def test_pretty_print_style_matches_spotify(world):
    out, _, _ = world
    f = sorted((out / "exports/listener-0001/Spotify Extended Streaming History").glob("*Audio*"))[0]
    head = f.read_bytes()[:30]
    assert head.startswith(b'[\n  {\n    "ts": "')
    assert REAL_2024.read_bytes()[:17] == head[:17]
    assert not f.read_bytes().endswith(b"\n")


def test_rows_ts_and_ms_and_reason_consistency(world):
    out, summary, _ = world
    ts_re = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
    n_null_skipped = n_rows = 0
    for h, u in summary.per_user.items():
        if u["format"] != "extended":
            continue
        rows = _audio_rows(out, h)
        n_rows += len(rows)
        for r in rows:
            assert ts_re.match(r["ts"])
            assert isinstance(r["ms_played"], int) and r["ms_played"] >= 0
            assert r["ip_addr"].startswith(("198.51.100.", "2001:db8::"))
            if r["spotify_episode_uri"]:
                assert r["spotify_track_uri"] is None and r["master_metadata_track_name"] is None
                assert r["episode_name"] and r["episode_show_name"]
            else:
                assert r["spotify_track_uri"].startswith("spotify:track:")
            if r["reason_end"] == "fwdbtn" and r["skipped"] is not None:
                assert r["skipped"] is True
            n_null_skipped += r["skipped"] is None
        # mostly sorted
        ts = [r["ts"] for r in rows]
        inversions = sum(a > b for a, b in itertools.pairwise(ts))
        assert inversions <= max(3, len(ts) // 50)
        # reason_start follows the previous reason_end inside a session
        uniq = sorted({json.dumps(r, sort_keys=True): r for r in rows}.values(), key=lambda r: r["ts"])
        pairs = [(a, b) for a, b in itertools.pairwise(uniq) if b["reason_start"] in ("fwdbtn", "trackdone")]
        bad = sum(a["reason_end"] != b["reason_start"] for a, b in pairs)
        assert pairs and bad <= max(2, len(pairs) // 100)
    assert n_null_skipped > 0
    assert n_null_skipped < n_rows * 0.05


def test_summary_counts_equal_written_files(world):
    out, summary, _ = world
    tot_tracks = tot_eps = tot_ms = tot_dups = tot_video = 0
    for h, u in summary.per_user.items():
        rows = _audio_rows(out, h) if u["format"] == "extended" else _legacy_rows(out, h)
        tracks = sum(1 for r in rows if r["spotify_track_uri"])
        eps = sum(1 for r in rows if r["spotify_episode_uri"])
        keys = [json.dumps(r, sort_keys=True) for r in rows]
        dups = len(keys) - len(set(keys))
        ms = sum(r["ms_played"] for r in rows)
        assert (u["rows"], u["track_plays"], u["episode_plays"], u["duplicates"], u["ms_played"]) == (
            len(rows),
            tracks,
            eps,
            dups,
            ms,
        )
        vf = list(
            (out / "exports" / h / "Spotify Extended Streaming History").glob("Streaming_History_Video_*")
        )
        nv = sum(len(json.loads(f.read_bytes())) for f in vf)
        assert u["video_plays"] == nv
        tot_tracks += tracks
        tot_eps += eps
        tot_ms += ms
        tot_dups += dups
        tot_video += nv
    assert (
        summary.track_plays,
        summary.episode_plays,
        summary.total_ms_played,
        summary.duplicates,
        summary.video_plays,
    ) == (tot_tracks, tot_eps, tot_ms, tot_dups, tot_video)
    assert summary.episode_plays > 0


def test_file_naming(world):
    out, summary, _ = world
    for h, u in summary.per_user.items():
        d = out / "exports" / h / "Spotify Extended Streaming History"
        if u["format"] == "legacy":
            assert not d.exists()
            names = sorted(p.name for p in (out / "exports" / h / "MyData").iterdir())
            assert names == [f"endsong_{i}.json" for i in range(len(names))]
            continue
        for p in d.iterdir():
            m = AUDIO_RE.match(p.name) or VIDEO_RE.match(p.name)
            assert m, p.name
            years = {r["ts"][:4] for r in json.loads(p.read_bytes())}
            assert m[1] == min(years) and (m[3] or m[1]) == max(years)
        ns = sorted(int(AUDIO_RE.match(p.name)[4]) for p in d.glob("Streaming_History_Audio_*"))
        assert ns == list(range(len(ns)))


def test_account_data_is_same_events(tmp_path):
    # 400 days so that the 365-day window cuts the history
    out = tmp_path / "w"
    s = generate_world(out, users=4, days=400, seed=3, end_date=END)
    cutoff = (dt.datetime(2026, 7, 1) - dt.timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for h, u in s.per_user.items():
        rows = _audio_rows(out, h)
        music = [r for r in rows if r["spotify_track_uri"] and r["ts"] >= cutoff]
        acct_dir = out / "exports" / h / "Spotify Account Data"
        acct = []
        for f in sorted(acct_dir.glob("StreamingHistory_music_*.json")):
            acct += json.loads(f.read_bytes())
        dups_in_window = len(music) - len({json.dumps(r, sort_keys=True) for r in music})
        assert len(acct) == len(music) - dups_in_window == u["account_music_rows"]
        assert len(acct) < len([r for r in rows if r["spotify_track_uri"]])  # the window cut something
        ext = sorted(
            (
                r["ts"][:10] + " " + r["ts"][11:16],
                r["master_metadata_album_artist_name"],
                r["master_metadata_track_name"],
                r["ms_played"],
            )
            for r in {json.dumps(x, sort_keys=True): x for x in music}.values()
        )
        got = sorted((a["endTime"], a["artistName"], a["trackName"], a["msPlayed"]) for a in acct)
        assert got == ext
        assert list(acct[0].keys()) == ["endTime", "artistName", "trackName", "msPlayed"]
        lib = json.loads((acct_dir / "YourLibrary.json").read_bytes())
        assert list(lib) == [
            "tracks",
            "albums",
            "shows",
            "episodes",
            "bannedTracks",
            "artists",
            "bannedArtists",
            "other",
        ]
        assert 30 <= len(lib["tracks"]) <= 300 or len(lib["tracks"]) == len(
            {r["spotify_track_uri"] for r in music}
        )
        pls = json.loads((acct_dir / "Playlist1.json").read_bytes())["playlists"]
        assert 1 <= len(pls) <= 6
        item = pls[0]["items"][0]
        assert list(item) == ["track", "episode", "audiobook", "localTrack", "addedDate"]
        assert item["track"]["trackUri"].startswith("spotify:track:")


def test_account_json_whitespace_like_real(world):
    out, _, _ = world
    real = (REAL / "hobbies-w-erin__Spotify-Account-Data" / "StreamingHistory_music_0.json").read_bytes()
    ours = (out / "exports/listener-0001/Spotify Account Data/StreamingHistory_music_0.json").read_bytes()
    assert real[:25] == ours[:25] == b'[\n  {\n    "endTime" : "20'[:25]
    assert re.search(rb'\n    "artistName" : "[^"]+",\n    "trackName" : ', ours)
    assert ours.endswith(b"\n  }\n]")


def test_legacy_format(world):
    out, summary, _ = world
    real = json.loads((REAL / "CandidlyRed__spotify" / "endsong.json").read_bytes())
    legacy = [h for h, u in summary.per_user.items() if u["format"] == "legacy"]
    assert legacy == ["listener-0011", "listener-0012"]
    raw = (out / "exports" / legacy[0] / "MyData" / "endsong_0.json").read_bytes()
    assert raw.startswith(b'[{"ts":"')  # compact like the real file
    rows = json.loads(raw)
    assert list(rows[0].keys()) == list(real[0].keys())
    assert all(re.match(r"^user[0-9a-f]{22}$", r["username"]) for r in rows)
    ots = [r["offline_timestamp"] for r in rows if r["offline_timestamp"] is not None]
    assert all(x > 1_000_000_000_000 for x in ots)  # milliseconds
    assert sum(r["skipped"] is None for r in rows) > len(rows) * 0.6
    assert all(r["ip_addr_decrypted"].startswith(("198.51.100.", "2001:db8::")) for r in rows)
    assert any(" " in r["platform"] for r in rows)


def test_catalogue(world):
    out, _, _ = world
    c = out / "catalog"
    artists = pd.read_parquet(c / "artists.parquet")
    albums = pd.read_parquet(c / "albums.parquet")
    tracks = pd.read_parquet(c / "tracks.parquet")
    csv = pd.read_csv(c / "tracks.csv", dtype={"release_date": str, "isrc": str})
    assert list(csv.columns) == list(tracks.columns)
    assert len(csv) == len(tracks)
    assert len(artists) == 300
    for df, col in ((artists, "artist_id"), (albums, "album_id"), (tracks, "track_id")):
        assert df[col].map(lambda x: bool(ID_RE.match(x))).all()
        assert df[col].is_unique
    eps = pd.read_parquet(c / "episodes.parquet")
    assert eps["episode_id"].map(lambda x: bool(ID_RE.match(x))).all() and eps["episode_id"].is_unique
    assert tracks["isrc"].str.len().eq(12).all()
    assert set(albums["release_date_precision"]) == {"day", "month", "year"}
    assert (albums["release_date_precision"] == "day").mean() > 0.6
    years = albums["release_date"].str[:4].astype(int)
    assert years.min() >= 1960 and years.max() <= 2026 and years.max() - years.min() > 40
    genres = {g for s in artists["genres"] for g in s.split(";")}
    assert len(genres) >= 12
    assert tracks["artist_ids"].str.contains(";").any()
    primary = tracks["genres"].str.split(";").str[0]
    mean = tracks.groupby(primary)[
        ["energy", "acousticness", "instrumentalness", "speechiness", "danceability", "duration_ms"]
    ].mean()
    assert mean.loc["edm", "energy"] > mean.loc["classical", "energy"] + 0.4
    assert mean.loc["classical", "acousticness"] > mean.loc["edm", "acousticness"] + 0.5
    assert mean.loc["hip hop", "speechiness"] > mean.loc["classical", "speechiness"] * 3
    assert mean.loc["classical", "duration_ms"] > mean.loc["pop", "duration_ms"] * 1.4
    # power-law popularity: the top 10 % of artists are far more followed than the median
    f = np.sort(artists["followers"].to_numpy())[::-1]
    assert f[: len(f) // 10].sum() > 0.5 * f.sum()
    assert artists["popularity"].between(0, 100).all()


def test_planted_types_at_60_users(tmp_path):
    s = generate_world(tmp_path / "w", users=60, days=7, seed=11, account_data=False)
    truth = load_truth(tmp_path / "w")
    assert len(truth) == 60
    counts = truth["listener_type"].value_counts()
    assert len(counts) >= 6
    assert counts.min() >= 60 // len(counts) - 1
    assert set(truth["listener_type"]) == set(s.types)
    assert {"handle", "listener_type", "country", "timezone"} <= set(truth.columns)
    tz_of = {"DE": "Europe/Berlin", "IN": "Asia/Kolkata", "JP": "Asia/Tokyo", "GB": "Europe/London"}
    for c, tz in zip(truth["country"], truth["timezone"], strict=True):
        if c in tz_of:
            assert tz == tz_of[c]
    assert not (tmp_path / "w" / "exports" / "listener-0001" / "Spotify Account Data").exists()


def test_types_behave_differently(tmp_path):
    out = tmp_path / "w"
    generate_world(out, users=14, days=28, seed=5, account_data=False)
    truth = load_truth(out).set_index("handle")
    stats = {}
    for h in truth.index:
        rows = _audio_rows(out, h)
        df = pd.DataFrame(rows)
        local = pd.to_datetime(df["ts"], utc=True).dt.tz_convert(truth.loc[h, "timezone"])
        stats[h] = {
            "skip": (df["reason_end"] == "fwdbtn").mean(),
            "night": (local.dt.hour < 4).mean(),
            "eps": df["spotify_episode_uri"].notna().mean(),
        }
    st = pd.DataFrame(stats).T.groupby(truth["listener_type"]).mean()
    assert st.loc["casual_skipper", "skip"] > 3 * st.loc["focus_worker", "skip"]
    assert st.loc["night_owl_explorer", "night"] > 0.3 > st.loc["commuter_mainstream", "night"]
    assert st.loc["podcast_commuter", "eps"] > 0.1 > st.loc["nostalgic_rock", "eps"]


def test_earlier_listeners_stable_when_adding_listeners(tmp_path):
    # catalogue size is fixed at 300 artists up to 100 users, so listener data must not depend on the count
    generate_world(tmp_path / "a", users=3, days=10, seed=9, account_data=False)
    generate_world(tmp_path / "b", users=5, days=10, seed=9, account_data=False)
    ha, hb = _tree_hashes(tmp_path / "a" / "exports"), _tree_hashes(tmp_path / "b" / "exports")
    for k, v in ha.items():
        assert hb[k] == v


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate_world(tmp_path, users=0)
    with pytest.raises(ValueError):
        generate_world(tmp_path, users=2, legacy_users=3)


def test_slices_together_are_the_whole_world(world, tmp_path):
    """`only` writes a slice of the listeners; the slices' exports and truth are byte for byte the whole world's."""
    out, _, _ = world
    a = generate_world(tmp_path / "a", users=12, days=30, seed=7, end_date=END, legacy_users=2, only=range(0, 5))
    b = generate_world(tmp_path / "b", users=12, days=30, seed=7, end_date=END, legacy_users=2, only=range(5, 12))
    whole = _tree_hashes(out / "exports")
    parts = {**_tree_hashes(tmp_path / "a" / "exports"), **_tree_hashes(tmp_path / "b" / "exports")}
    assert parts == whole and len(whole) > 12
    assert sorted(a.per_user) == [f"listener-{i:04d}" for i in range(1, 6)]
    assert a.track_plays + b.track_plays == json.loads((out / "world.json").read_bytes())["track_plays"]
    assert _tree_hashes(tmp_path / "a" / "catalog") == _tree_hashes(out / "catalog")
    with pytest.raises(ValueError):
        generate_world(tmp_path / "c", users=3, days=5, only=range(2, 4))
