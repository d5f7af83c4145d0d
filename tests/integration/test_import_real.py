"""Every real export in ../shared/data/real imports, and the summary matches counts computed from the files with
plain `json` (not tunelake's parser): rows, music/episode rows, ms_played, duplicates, library and playlist items."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tunelake.curate.catalog import import_catalog
from tunelake.curate.ingest import import_paths
from tunelake.curate.plays import read_user_plays
from tunelake.lake import manifest
from tunelake.pipeline import build
from tunelake.sources.names import is_surrogate
from tunelake.warehouse.store import open_warehouse
from tunelake.workspace import open_workspace

EXPORTS = {
    "efrrowini": "Efrrowini__spotify-music-analysis",
    "candidlyred": "CandidlyRed__spotify",
    "erin": "hobbies-w-erin__Spotify-Account-Data",
    "timothy": "TimothyMwiti__SpotifyDataAnalysis",
}


def _load(p: Path):
    return json.loads(p.read_text(encoding="utf-8"))


def expected_counts(folder: Path) -> dict[str, int]:
    """Counts straight from the files."""
    out = Counter()
    plays = []  # whole records, for exact duplicates
    keys = []  # (end time, item, ms_played): the playback a record describes
    for f in sorted(folder.glob("*.json")):
        if f.name.startswith(("Streaming_History", "endsong")):
            for r in _load(f):
                plays.append(json.dumps(r, sort_keys=True))
                keys.append((r["ts"], r.get("spotify_track_uri") or r.get("spotify_episode_uri")
                             or (r.get("master_metadata_track_name"), r.get("episode_name")), r["ms_played"]))
                out["play_rows"] += 1
                out["ms_played"] += r["ms_played"]
                out["music_rows"] += bool(r.get("spotify_track_uri"))
                out["episode_rows"] += bool(r.get("spotify_episode_uri"))
                out["null_skipped"] += r.get("skipped") is None
        elif f.name.startswith("StreamingHistory"):
            for r in _load(f):
                plays.append(json.dumps(r, sort_keys=True))
                keys.append((r["endTime"], r.get("artistName"), r.get("trackName"), r.get("podcastName"),
                             r.get("episodeName"), r.get("audiobookName"), r.get("chapterName"), r["msPlayed"]))
                out["play_rows"] += 1
                out["ms_played"] += r["msPlayed"]
                out["music_rows"] += "trackName" in r
                out["episode_rows"] += "podcastName" in r or "audiobookName" in r
        elif f.name == "YourLibrary.json":
            out["library_items"] += sum(len(v) for v in _load(f).values() if isinstance(v, list))
            out["library_tracks"] += len(_load(f)["tracks"])
        elif f.name.startswith("Playlist"):
            pls = _load(f)["playlists"]
            out["playlist_items"] += sum(len(p["items"]) for p in pls)
    out["exact_duplicates"] = sum(n - 1 for n in Counter(plays).values())
    out["same_playback"] = sum(n - 1 for n in Counter(keys).values())
    return dict(out)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, real_dir):
    cfg = open_workspace(tmp_path_factory.mktemp("real-all"))
    cat = import_catalog(cfg, real_dir / "Vullkano__BDDA" / "spotify_songs.parquet")
    summaries = {h: import_paths(cfg, [str(real_dir / d)], h) for h, d in EXPORTS.items()}
    return cfg, cat, summaries


@pytest.fixture(scope="module")
def warehouse(imported):
    cfg, _, _ = imported
    build(cfg)
    return cfg


def _warehouse_counts(cfg, key: int) -> tuple[int, int]:
    con = open_warehouse(cfg)
    try:
        return con.execute(
            "SELECT (SELECT count(*) FROM fact_play WHERE user_key = $k), "
            "(SELECT count(*) FROM fact_episode_play WHERE user_key = $k)", {"k": key}).fetchall()[0]
    finally:
        con.close()


@pytest.mark.parametrize("handle", list(EXPORTS))
def test_summary_matches_the_files(imported, real_dir, handle):
    cfg, _, summaries = imported
    s = summaries[handle]
    d = s.as_dict()
    exp = expected_counts(real_dir / EXPORTS[handle])
    assert d["failed"] == [] and d["not_supported"] == 0 and d["quarantined"] == {}
    assert all(f.status == "imported" for f in s.files)
    plays = d["by_table"]["plays"]
    assert plays["read"] == exp["play_rows"]
    assert plays["duplicates"] == exp["same_playback"]
    assert plays["accepted"] == exp["play_rows"] - exp["same_playback"]
    assert plays["merged"] == 0
    assert d["ms_played"] == exp["ms_played"]
    for f in s.files:  # every file adds up, and so does its manifest batch
        assert f.read == f.accepted + f.duplicates + f.merged + f.quarantined_total
        b = manifest.find_batch(cfg.lake, f.batch_id)
        assert (b.read, b.accepted, b.duplicates, b.merged) == (f.read, f.accepted, f.duplicates, f.merged)
    if "library_items" in exp:
        assert d["by_table"]["saved_tracks"]["read"] == exp["library_items"]
        assert d["by_table"]["playlist_items"]["read"] == exp["playlist_items"]
        assert d["by_table"]["playlist_items"]["accepted"] == exp["playlist_items"]

    # Curated plays: one row per distinct playback; music and episode rows as in the files.
    key = manifest.user_key_for(handle)
    cur = read_user_plays(cfg.lake, key)
    assert cur.num_rows == exp["play_rows"] - exp["same_playback"]
    ctype = Counter(cur["content_type"].to_pylist())
    if handle in ("erin", "timothy"):
        assert ctype["track"] == exp["music_rows"]
        assert ctype["episode"] + ctype["audiobook"] == exp.get("episode_rows", 0)
        assert set(cur["ts_precision"].to_pylist()) == {"min"} and set(cur["source"].to_pylist()) == {"account"}
        assert cur["track_id"].null_count == ctype["episode"] + ctype["audiobook"]  # every music row has an id


@pytest.mark.parametrize("handle", list(EXPORTS))
def test_warehouse_facts_match_the_files(imported, warehouse, handle):
    cfg, _, _ = imported
    key = manifest.user_key_for(handle)
    cur = read_user_plays(cfg.lake, key)
    ctype = Counter(cur["content_type"].to_pylist())
    n_music, n_eps = _warehouse_counts(warehouse, key)
    music_with_id = pc.sum(pc.and_(pc.equal(cur["content_type"], "track"), pc.is_valid(cur["track_id"]))).as_py()
    assert n_music == music_with_id == (ctype["track"] if handle in ("erin", "timothy") else music_with_id)
    assert n_eps == ctype["episode"] + ctype["audiobook"]  # podcasts and audiobooks: their own fact, not music


def test_endsong_exact_duplicates_and_null_skipped(imported, real_dir):
    cfg, _, summaries = imported
    exp = expected_counts(real_dir / EXPORTS["candidlyred"])
    # endsong.json holds one byte-identical duplicate record, and one pair that is the same playback (same ts,
    # track and ms_played) differing only in reason_start/offline_timestamp: both count as duplicates, once.
    assert (exp["exact_duplicates"], exp["same_playback"]) == (1, 2)
    assert summaries["candidlyred"].total("duplicates") == 2
    assert exp["null_skipped"] > 0
    cur = read_user_plays(cfg.lake, manifest.user_key_for("candidlyred"))
    # null `skipped` is kept as unknown (null), never quarantined and never read as "not skipped"
    rows = _load(real_dir / EXPORTS["candidlyred"] / "endsong.json")
    first: dict[tuple, dict] = {}
    for r in rows:
        first.setdefault((r["ts"], r.get("spotify_track_uri") or r.get("spotify_episode_uri"), r["ms_played"]), r)
    assert cur["skipped"].null_count == sum(r["skipped"] is None for r in first.values())
    assert cur["skipped"].null_count < cur.num_rows


def test_library_and_playlists_reach_the_warehouse(warehouse, real_dir):
    cfg = warehouse
    erin = _load(real_dir / EXPORTS["erin"] / "YourLibrary.json")
    tim_lists = _load(real_dir / EXPORTS["timothy"] / "Playlist1.json")["playlists"]
    con = open_warehouse(cfg)
    try:
        saved = dict(con.execute("SELECT handle, count(*) FROM fact_saved_track JOIN dim_user USING (user_key) "
                                 "GROUP BY ALL").fetchall())
        items = dict(con.execute("SELECT handle, count(*) FROM fact_playlist_item JOIN dim_user USING (user_key) "
                                 "GROUP BY ALL").fetchall())
        lists = con.execute("SELECT count(DISTINCT playlist_id) FROM fact_playlist_item JOIN dim_user "
                            "USING (user_key) WHERE handle = 'timothy'").fetchall()[0][0]
        # Old library without URIs: saved tracks get the same surrogate id as the plays of the same song.
        shared = con.execute("""SELECT count(DISTINCT s.track_id) FROM fact_saved_track s JOIN fact_play p
                                USING (user_key, track_id) JOIN dim_user u USING (user_key)
                                WHERE u.handle = 'timothy'""").fetchall()[0][0]
    finally:
        con.close()
    assert saved["erin"] == len({t["uri"] for t in erin["tracks"]})
    tim_lib = _load(real_dir / EXPORTS["timothy"] / "YourLibrary.json")["tracks"]
    # No URIs in 2019: 616 entries, 588 distinct (artist, track) names; names that normalise alike ("feat."
    # credits, case) or resolve to the same catalogue track are one saved track.
    distinct_names = len({(t["artist"].lower(), t["track"].lower()) for t in tim_lib})
    assert distinct_names == 588 and 570 <= saved["timothy"] <= distinct_names
    assert items["timothy"] == sum(len(p["items"]) for p in tim_lists)
    assert items["erin"] == 1008
    assert lists == len(tim_lists)
    assert shared > 100


def test_resolution_is_reported(imported):
    _, _, summaries = imported
    erin = summaries["erin"].as_dict()
    assert erin["to_resolve"] == 15850 + 597  # music and podcast rows are resolved by name; audiobooks are not
    assert 0 < erin["resolved"] < erin["to_resolve"]
    assert erin["resolution_rate"] == round(erin["resolved"] / erin["to_resolve"], 4)
    assert summaries["efrrowini"].as_dict()["resolution_rate"] is None  # nothing to resolve


def test_catalogue_parquet_and_csv(imported, warehouse, real_dir):
    cfg, cat, _ = imported
    assert cat.layout == "tidytuesday"
    assert cat.tracks == 28356  # distinct track_id of the 32,833 (playlist, track) rows
    lake = cfg.lake
    tracks = lake.read_parquet("curated/catalog_tracks/data.parquet")
    assert pc.sum(pc.equal(tracks["track_name"], "nan")).as_py() == 0  # literal "nan" strings became nulls
    assert tracks["track_name"].null_count == 4
    genres = lake.read_parquet("curated/catalog_artist_genres/data.parquet")
    before = (tracks.sort_by("track_id"), genres.sort_by([("artist_id", "ascending"), ("genre", "ascending")]))
    again = import_catalog(cfg, real_dir / "Vullkano__BDDA" / "spotify_songs.parquet")
    assert again.already_imported
    csv = import_catalog(cfg, real_dir / "Vullkano__BDDA" / "spotify_songs.csv")
    assert csv.tracks == 28356
    after = (lake.read_parquet("curated/catalog_tracks/data.parquet").sort_by("track_id"),
             lake.read_parquet("curated/catalog_artist_genres/data.parquet").sort_by(
                 [("artist_id", "ascending"), ("genre", "ascending")]))
    # The CSV copy maps to exactly the same catalogue as the Parquet original (only `source` differs).
    assert before[0].drop_columns(["source"]).equals(after[0].drop_columns(["source"]))
    assert before[1].equals(after[1])
    con = open_warehouse(cfg)
    try:
        with_features = con.execute("SELECT count(*) FROM dim_track WHERE has_audio_features").fetchall()[0][0]
    finally:
        con.close()
    assert with_features >= 28356


def test_reimport_adds_nothing(imported, real_dir):
    cfg, _, _ = imported
    lake = cfg.lake
    before = {h: read_user_plays(lake, manifest.user_key_for(h)).num_rows for h in EXPORTS}
    for h, d in EXPORTS.items():
        again = import_paths(cfg, [str(real_dir / d)], h)
        assert {f.status for f in again.files} == {"already imported"}
        assert again.total("accepted") == 0
    assert {h: read_user_plays(lake, manifest.user_key_for(h)).num_rows for h in EXPORTS} == before
    assert any(is_surrogate(t) for t in read_user_plays(lake, manifest.user_key_for("timothy"))["track_id"]
               .to_pylist())


def test_account_only_users_get_the_default_timezone(warehouse):
    con = open_warehouse(warehouse)
    try:
        tz = {h: (t, s) for h, t, s in con.execute(
            "SELECT handle, timezone, timezone_source FROM dim_user").fetchall()}
    finally:
        con.close()
    # no conn_country in account data: default timezone unless --tz is given
    assert tz["erin"] == tz["timothy"] == ("UTC", "default")
    assert tz["efrrowini"][1] == "inferred"


def test_the_zip_spotify_sends_imports_like_the_folder(tmp_path, real_dir, imported):
    """my_spotify_data.zip with its nested folder gives the same numbers as the unpacked files."""
    import zipfile

    src = real_dir / EXPORTS["erin"]
    z = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(src.glob("*.json")):
            zf.write(f, f"Spotify Account Data/{f.name}")
        zf.writestr("Spotify Account Data/Read_Me_First.pdf", b"%PDF-1.4")
    cfg = open_workspace(tmp_path / "ws")
    s = import_paths(cfg, [str(z)], "erin-zip").as_dict()
    folder = imported[2]["erin"].as_dict()
    for k in ("read", "accepted", "duplicates", "merged", "quarantined", "ms_played", "by_table", "to_resolve"):
        assert s[k] == folder[k], k
    assert s["files"] == folder["files"] == 6


def test_raw_zone_gives_back_every_byte_received(imported, real_dir):
    """Raw files are zstd frames by default; decompressed, each is the file received (same SHA-256, same bytes),
    and it takes less disk than the original."""
    import hashlib

    from tunelake.curate.raw import read_raw

    cfg = imported[0]
    lake = cfg.lake
    batches = [b for b in manifest.list_batches(lake) if b.raw_path and b.source != "catalog"]
    assert len(batches) >= 10
    originals = {(h, p.name): p.read_bytes() for h, d in EXPORTS.items() for p in (real_dir / d).glob("*.json")}
    for b in batches:
        assert b.raw_path.endswith(".zst")
        data = read_raw(lake, b.raw_path)
        assert hashlib.sha256(data).hexdigest() == b.content_hash
        assert data == originals[(b.handle, b.name)]
        stored = len(lake.read_bytes(b.raw_path))
        assert stored < len(data)
        if len(data) > 10_000 and b.name.startswith(("Streaming_History_Audio", "endsong")):  # 8–20×
            assert stored * 7 < len(data)
