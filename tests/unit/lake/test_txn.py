"""Lake transactions: staged writes are invisible to other readers until the commit document is written, visible
all together after it, and `recover` finishes a commit that was interrupted or undoes one that never committed."""

from __future__ import annotations

import os

import orjson
import pyarrow as pa
import pytest

from tunelake.lake.store import Lake, LakeWriteError
from tunelake.lake.txn import STAGED, TXN_DIR, finish_committed, recover


def files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def test_writes_become_visible_together_at_commit(tmp_path):
    writer, reader = Lake(str(tmp_path)), Lake(str(tmp_path))
    with writer.transaction("t"):
        writer.write_bytes("raw/a.json", b"[1]")
        writer.write_parquet("curated/t/data.parquet", pa.table({"x": [1, 2]}))
        writer.write_json("_manifest/batches/b.json", {"id": "b"})
        # the writer reads its own writes; another reader sees nothing yet
        assert writer.exists("raw/a.json") and writer.read_bytes("raw/a.json") == b"[1]"
        assert writer.read_parquet("curated/t/data.parquet")["x"].to_pylist() == [1, 2]
        assert writer.listdir("_manifest/batches") == ["b.json"]
        assert writer.glob("curated/**/*.parquet") == ["curated/t/data.parquet"]
        assert not reader.exists("raw/a.json") and reader.listdir("_manifest/batches") == []
        assert reader.glob("curated/**/*.parquet") == []
    assert reader.read_bytes("raw/a.json") == b"[1]"
    assert reader.read_json("_manifest/batches/b.json") == {"id": "b"}
    assert files(tmp_path) == ["_manifest/batches/b.json", "curated/t/data.parquet", "raw/a.json"]


def test_a_failed_transaction_leaves_nothing(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_bytes("keep.json", b"old")
    with pytest.raises(RuntimeError), lake.transaction():
        lake.write_bytes("keep.json", b"new")
        lake.write_bytes("other.json", b"x")
        lake.delete("keep.json")
        raise RuntimeError("boom")
    assert files(tmp_path) == ["keep.json"] and lake.read_bytes("keep.json") == b"old"


def test_deletes_apply_at_commit(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_bytes("d/a.json", b"a")
    lake.write_bytes("d/b.json", b"b")
    with lake.transaction():
        lake.delete("d/a.json")
        assert not lake.exists("d/a.json") and lake.listdir("d") == ["b.json"]
        assert Lake(str(tmp_path)).exists("d/a.json")
    assert files(tmp_path) == ["d/b.json"]


def test_nested_transactions_join_the_outer_one(tmp_path):
    lake = Lake(str(tmp_path))
    with lake.transaction() as outer:
        with lake.transaction() as inner:
            assert inner is outer
            lake.write_bytes("a", b"1")
        assert files(tmp_path) != ["a"]  # the inner block's end committed nothing
    assert files(tmp_path) == ["a"]


def test_recover_rolls_a_committed_transaction_forward_and_an_uncommitted_one_back(tmp_path):
    lake = Lake(str(tmp_path))
    # committed: the document is there, one of two files was moved before the crash
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / f"{STAGED}T1-a.json").write_bytes(b"a")
    (tmp_path / "x" / "b.json").write_bytes(b"b")
    (tmp_path / "gone.json").write_bytes(b"old")
    doc = {"txn": "T1", "moves": [[f"x/{STAGED}T1-a.json", "x/a.json"], [f"x/{STAGED}T1-b.json", "x/b.json"]],
           "deletes": ["gone.json"]}
    lake.write_bytes(f"{TXN_DIR}/T1.json", orjson.dumps(doc))
    # uncommitted: staged and temporary files with no document
    (tmp_path / "x" / f"{STAGED}T2-c.json").write_bytes(b"c")
    (tmp_path / "x" / ".c.json.tmp-123").write_bytes(b"half")
    done = recover(lake)
    assert done.rolled_forward == ["T1"]
    assert sorted(done.removed) == sorted([f"x/{STAGED}T2-c.json", "x/.c.json.tmp-123"])
    assert files(tmp_path) == ["x/a.json", "x/b.json"]
    assert finish_committed(lake) == [] and not recover(lake).changed  # idempotent


def test_a_write_error_names_the_path_and_leaves_no_temporary_file(tmp_path):
    lake = Lake(str(tmp_path))
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o500)
    try:
        if os.access(tmp_path / "ro", os.W_OK):  # root ignores modes: use a file where a folder must go
            (tmp_path / "ro" / "sub").write_bytes(b"")
            target = "ro/sub/x.json"
        else:
            target = "ro/x.json"
        with pytest.raises(LakeWriteError) as exc:
            lake.write_bytes(target, b"data")
        assert str(tmp_path / target) in str(exc.value)
        assert [f for f in files(tmp_path) if ".tmp-" in f] == []
    finally:
        os.chmod(tmp_path / "ro", 0o700)


def test_private_files_are_0600(tmp_path):
    lake = Lake(str(tmp_path))
    with lake.transaction():
        lake.write_bytes("q/a.jsonl", b"x", private=True)
    lake.write_bytes("q/b.json", b"y", private=True)
    assert oct(os.stat(tmp_path / "q" / "a.jsonl").st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "q" / "b.json").st_mode & 0o777) == "0o600"
