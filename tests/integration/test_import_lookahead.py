"""One listener's files parsed ahead in threads (`curate/lookahead`) store exactly what parsing them one after
another stores; the name index a first import writes counts each play once."""

from __future__ import annotations

import shutil
import threading

import pyarrow.compute as pc
import pytest

from tunelake.curate.ingest import import_paths
from tunelake.curate.lookahead import lookahead
from tunelake.curate.plays import read_user_plays
from tunelake.curate.raw import read_raw
from tunelake.lake import manifest
from tunelake.workspace import open_workspace


def test_lookahead_keeps_order_bounds_the_window_and_raises_where_the_result_is_asked():
    produced: list[int] = []
    threads: dict[int, str] = {}

    def work(i: int):
        threads[i] = threading.current_thread().name
        if i == 3:
            raise ValueError("job 3")
        return i * 10

    def jobs():
        for i in range(6):
            produced.append(i)
            yield i, (lambda i=i: work(i)) if i != 4 else None

    seen = []
    for item, result in lookahead(jobs(), 2):
        assert len(produced) <= item + 3  # the consumer's job, at most two ahead of it, and the one being read
        if item == 3:
            with pytest.raises(ValueError, match="job 3"):
                result()
            seen.append((item, "raised"))
        else:
            seen.append((item, result() if result else None))
    assert seen == [(0, 0), (1, 10), (2, 20), (3, "raised"), (4, None), (5, 50)]
    assert all(name.startswith("tunelake-parse") for name in threads.values())
    # the threads end with the import: a long-running process keeps none (nor connections in them)
    assert not [t for t in threading.enumerate() if t.name.startswith("tunelake-parse")]

    threads.clear()
    produced.clear()
    serial = [(item, result() if result and item != 3 else None) for item, result in lookahead(jobs(), 1)]
    assert serial == [(0, 0), (1, 10), (2, 20), (3, None), (4, None), (5, 50)]
    assert set(threads.values()) == {threading.current_thread().name}  # width 1: no threads at all


def _listener_files(real_dir, tmp_path):
    """A real listener's extended history (4 audio + 2 video files) beside another's account data, library and
    playlists, one broken history file among them: every kind of parser, and a failure in the middle."""
    root = tmp_path / "export"
    for name in ("Efrrowini__spotify-music-analysis", "TimothyMwiti__SpotifyDataAnalysis"):
        shutil.copytree(real_dir / name, root / name)
    (root / "Efrrowini__spotify-music-analysis" / "Streaming_History_Audio_2025.json").write_text('[{"ts": ')
    return root


def _stored(ws, handle: str) -> tuple[list[dict], list[tuple], list[tuple], list[dict]]:
    plays = read_user_plays(ws.lake, manifest.user_key_for(handle))
    plays = plays.sort_by([("play_id", "ascending"), ("batch_id", "ascending")])
    batches = sorted((b.name, b.content_hash, b.read, b.accepted, b.duplicates, b.merged, read_raw(ws.lake, b.raw_path))
                     for b in manifest.list_batches(ws.lake))
    quarantine = sorted((rel, ws.lake.read_bytes(rel)) for rel in ws.lake.glob("quarantine/**/*.jsonl"))
    index = ws.lake.read_parquet("curated/_name_index/data.parquet")
    index = index.sort_by([(c, "ascending") for c in ("kind", "item_id", "first", "second")])
    return plays.to_pylist(), batches, quarantine, index.to_pylist()


def test_files_parsed_ahead_store_what_one_after_another_stores(real_dir, tmp_path):
    root = _listener_files(real_dir, tmp_path)
    one = open_workspace(tmp_path / "one", {"import_threads": 1})
    two = open_workspace(tmp_path / "two", {"import_threads": 2})
    s1 = import_paths(one, [str(root)], "erin")
    s2 = import_paths(two, [str(root)], "erin")
    assert [f.status for f in s2.files] == [f.status for f in s1.files]
    assert s2.as_dict() == s1.as_dict()
    assert sum(f.status == "failed" for f in s2.files) == 1 and s2.total("read") > 10_000
    assert {f.kind for f in s2.files} >= {"extended_audio", "extended_video", "account_music", "library", "playlist"}
    assert _stored(two, "erin") == _stored(one, "erin")
    again = import_paths(two, [str(root)], "erin")  # nothing new: recognised by hash before any parse
    assert {f.status for f in again.files} == {"already imported", "failed"}
    assert _stored(two, "erin") == _stored(one, "erin")


def test_a_first_import_counts_each_play_once_in_the_name_index(real_dir, tmp_path):
    """The first import into a lake without a name index builds it from the plays the lake holds; the rows of the
    import itself were read there and then added again (every weight of a first import was doubled)."""
    ws = open_workspace(tmp_path / "ws")
    summary = import_paths(ws, [str(real_dir / "Efrrowini__spotify-music-analysis")], "erin")
    plays = read_user_plays(ws.lake, manifest.user_key_for("erin"))
    tracks = plays.filter(pc.and_(pc.is_valid(plays["track_id"]), pc.is_valid(plays["track_name"])))
    counts = tracks.group_by(["track_id", "artist_name", "track_name"]).aggregate([([], "count_all")])
    expected = {(r["track_id"], r["artist_name"], r["track_name"]): r["count_all"] for r in counts.to_pylist()}
    index = ws.lake.read_parquet("curated/_name_index/data.parquet")
    index = index.filter(pc.equal(index["kind"], "track"))
    got = {(r["item_id"], r["first"], r["second"]): r["weight"] for r in index.to_pylist()}
    # The index counts what the files named, so a record repeated in the export (a duplicate) counts again.
    assert len(expected) > 1000 and summary.total("duplicates") > 0
    assert set(got) == set(expected)
    assert all(got[k] >= expected[k] for k in expected)
    assert sum(got.values()) - sum(expected.values()) == summary.total("duplicates")


def test_a_big_file_parsed_in_parts_stores_what_parsing_it_whole_stores(real_dir, tmp_path):
    """A history file big enough to be cut (`sources/extended_parts`), with bad records on both sides of the cut,
    imported on two threads (parsed in two parts) and on one (parsed whole): the same rows, record numbers,
    quarantine, batches and name index."""
    import json

    from tunelake.sources import extended_parts

    src = json.loads((real_dir / "Efrrowini__spotify-music-analysis" / "Streaming_History_Audio_2024.json")
                     .read_bytes())
    records = []
    for back in range(4):  # the same year four times over, a year earlier each time: distinct plays
        records += [{**r, "ts": f"{int(r['ts'][:4]) - back}{r['ts'][4:]}"} for r in src]
    records[10]["ms_played"] = -1
    records[-10]["spotify_track_uri"] = "spotify:album:0"
    data = json.dumps(records, indent=2).encode()
    assert len(data) >= 2 * extended_parts.MIN_PART_BYTES and extended_parts.cut_points(data, 2) is not None
    root = tmp_path / "export"
    root.mkdir()
    (root / "Streaming_History_Audio_2020-2024.json").write_bytes(data)
    one = open_workspace(tmp_path / "one", {"import_threads": 1})
    two = open_workspace(tmp_path / "two", {"import_threads": 2})
    s1 = import_paths(one, [str(root)], "erin")
    s2 = import_paths(two, [str(root)], "erin")
    assert s2.as_dict() == s1.as_dict()
    assert s2.total("read") == len(records) and sum(f.quarantined_total for f in s2.files) == 2
    assert _stored(two, "erin") == _stored(one, "erin")
    numbers = read_user_plays(two.lake, manifest.user_key_for("erin"))["record_no"].to_pylist()
    assert sorted(numbers)[-1] == len(records) - 1 and 10 not in numbers and len(records) - 10 not in numbers
