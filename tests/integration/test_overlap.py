"""Overlap safety on the synthetic world: the account-data view and the extended history of the same listener,
imported together or in either order, two overlapping exports, or the same export twice, never double count."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import orjson
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

EXT = "Spotify Extended Streaming History"
ACC = "Spotify Account Data"


def playbacks(folder: Path) -> int:
    """Distinct playbacks in an extended-history folder, by plain json: (ts, item, ms_played)."""
    seen = set()
    for f in folder.glob("*.json"):
        for r in json.loads(f.read_bytes()):
            seen.add((r["ts"], r.get("spotify_track_uri") or r.get("spotify_episode_uri"), r["ms_played"]))
    return len(seen)


def account_rows(folder: Path) -> Counter:
    out = Counter()
    for f in folder.glob("StreamingHistory_*.json"):
        out["podcast" if "podcast" in f.name else "music"] += len(json.loads(f.read_bytes()))
    return out


@pytest.fixture(scope="module")
def listeners(small_world) -> list[Path]:
    folders = sorted(p for p in (small_world / "exports").iterdir() if (p / ACC).exists())
    assert len(folders) >= 10
    return folders


def test_both_views_together_count_each_playback_once(tmp_path, small_world, listeners):
    cfg = open_workspace(tmp_path)
    lake = cfg.lake
    total = not_music = 0
    for folder in listeners:
        s = import_paths(cfg, [str(folder)], folder.name)
        d = s.as_dict()
        expected = playbacks(folder / EXT)
        acc = account_rows(folder / ACC)
        assert acc["music"] > 0
        assert read_user_plays(lake, manifest.user_key_for(folder.name)).num_rows == expected
        assert d["by_table"]["plays"]["accepted"] == expected
        # every account-data row is the same playback as one extended row: merged, not added
        assert d["by_table"]["plays"]["merged"] == acc["music"] + acc["podcast"]
        assert d["resolution_rate"] >= 0.99
        for f in s.files:
            assert f.read == f.accepted + f.duplicates + f.merged + f.quarantined_total
        total += expected
        not_music += d["excluded_from_streams"]
    build(cfg)
    con = open_warehouse(cfg)
    try:
        n_play, n_ep = con.execute("SELECT (SELECT count(*) FROM fact_play), (SELECT count(*) FROM fact_episode_play)"
                                   ).fetchall()[0]
        sources = dict(con.execute("SELECT source, count(*) FROM fact_play GROUP BY ALL").fetchall())
        saved = con.execute("SELECT count(*) FROM fact_saved_track").fetchall()[0][0]
    finally:
        con.close()
    assert n_play + n_ep == total
    assert not_music == n_ep  # accepted rows that are not music: exactly the episode playbacks, none counted twice
    assert sources == {"extended": n_play}  # the extended row is the one kept
    assert saved > 0


@pytest.mark.parametrize("first,second", [(ACC, EXT), (EXT, ACC)])
def test_either_order_gives_the_same_playbacks(tmp_path, listeners, first, second):
    cfg = open_workspace(tmp_path)
    lake = cfg.lake
    for folder in listeners[:4]:
        a = import_paths(cfg, [str(folder / first)], folder.name)
        b = import_paths(cfg, [str(folder / second)], folder.name)
        expected = playbacks(folder / EXT)
        plays = read_user_plays(lake, manifest.user_key_for(folder.name))
        assert plays.num_rows == expected
        assert set(plays["source"].to_pylist()) == {"extended"}
        acc = account_rows(folder / ACC)
        assert a.total("merged") + b.total("merged") == acc["music"] + acc["podcast"]
        plays_accepted = sum(s.as_dict()["by_table"]["plays"]["accepted"] for s in (a, b))
        assert plays_accepted == expected  # Σ accepted = playbacks, in either order
        if first == ACC:
            assert b.replaced == acc["music"] + acc["podcast"]  # stored account rows replaced by extended rows
            for f in b.files:
                batch = manifest.find_batch(lake, f.batch_id)
                assert batch.merged == f.merged and batch.read == batch.accepted + batch.duplicates + batch.merged


def test_same_export_twice_and_overlapping_exports(tmp_path, listeners):
    cfg = open_workspace(tmp_path / "ws")
    lake = cfg.lake
    folder = max(listeners, key=lambda p: playbacks(p / EXT))
    expected = playbacks(folder / EXT)
    # Two exports that overlap in time: the first ⅔ and the last ⅔ of every file, under other names.
    audio_files = sorted((folder / EXT).glob("Streaming_History_Audio_*.json"))
    rows = [r for f in audio_files for r in json.loads(f.read_bytes())]
    rows.sort(key=lambda r: r["ts"])
    early, late = tmp_path / "early", tmp_path / "late"
    early.mkdir()
    late.mkdir()
    (early / "Streaming_History_Audio_2025.json").write_bytes(orjson.dumps(rows[: 2 * len(rows) // 3]))
    (late / "Streaming_History_Audio_2026.json").write_bytes(orjson.dumps(rows[len(rows) // 3:]))
    acc_copy = tmp_path / "acc"
    shutil.copytree(folder / ACC, acc_copy)
    import_paths(cfg, [str(early)], folder.name)
    import_paths(cfg, [str(acc_copy)], folder.name)
    s = import_paths(cfg, [str(late)], folder.name)
    assert s.total("duplicates") > 0
    key = manifest.user_key_for(folder.name)
    audio = len({(r["ts"], r.get("spotify_track_uri") or r.get("spotify_episode_uri"), r["ms_played"]) for r in rows})
    videos = expected - audio
    assert read_user_plays(lake, key).num_rows == audio
    # The same export again (as the original folder): only the videos are new; nothing is counted twice.
    again = import_paths(cfg, [str(folder)], folder.name)
    assert read_user_plays(lake, key).num_rows == expected
    assert again.total("accepted") >= videos
    # And the very same bytes a third time: recognised by hash, nothing read.
    third = import_paths(cfg, [str(folder)], folder.name)
    assert {f.status for f in third.files} == {"already imported"}
    assert read_user_plays(lake, key).num_rows == expected


def test_account_only_resolves_against_the_catalogue(tmp_path, small_world, listeners):
    cfg = open_workspace(tmp_path)
    import_catalog(cfg, small_world / "catalog")
    rates = []
    for folder in listeners:
        s = import_paths(cfg, [str(folder / ACC)], folder.name)
        d = s.as_dict()
        assert d["quarantined"] == {} and d["merged"] == 0
        rates.append((d["resolved"], d["to_resolve"]))
    resolved, todo = map(sum, zip(*rates, strict=True))
    assert todo > 1000 and resolved / todo >= 0.99


def test_surrogate_ids_are_upgraded_when_the_track_becomes_known(tmp_path, listeners):
    """Account data first (no catalogue: some rows get surrogate ids), then extended history of other dates that
    names the same songs: the stored account rows get the real ids; they are not merged (different playbacks)."""
    cfg = open_workspace(tmp_path / "ws")
    lake = cfg.lake
    folder = listeners[0]
    first = import_paths(cfg, [str(folder / ACC)], folder.name)
    d = first.as_dict()
    assert d["resolved"] < d["to_resolve"]
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    for f in (folder / EXT).glob("Streaming_History_Audio_*.json"):
        rows = json.loads(f.read_bytes())
        for r in rows:  # the same songs three years earlier: nothing overlaps in time
            r["ts"] = str(int(r["ts"][:4]) - 3) + r["ts"][4:]
        (shifted / f.name).write_bytes(orjson.dumps(rows))
    second = import_paths(cfg, [str(shifted)], folder.name)
    assert second.total("merged") == 0
    assert second.upgraded == second.as_dict()["upgraded_account_rows"] > 0
    plays = read_user_plays(lake, manifest.user_key_for(folder.name))
    acc = plays.filter(pc.equal(plays["source"], "account"))
    assert acc.num_rows == d["by_table"]["plays"]["accepted"]
    surrogates = sum(1 for t in acc["track_id"].to_pylist() if t and is_surrogate(t))
    assert surrogates == 0  # every song the account data names is in the extended history
