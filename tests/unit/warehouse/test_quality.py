"""Data-quality gates: the demo data passes every gate; each kind of corruption trips the matching gate with the
offending keys, and a failed gate leaves the previous warehouse current."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunelake.errors import QualityGateError
from tunelake.lake import zones
from tunelake.lake.manifest import list_users
from tunelake.pipeline import build
from tunelake.sources.types import PLAYS, SAVED_TRACKS
from tunelake.warehouse import quality
from tunelake.warehouse.store import current_warehouse_file, open_warehouse, read_pointer
from tunelake.warehouse.tables import TABLES
from tunelake.workspace import Workspace, open_workspace


@pytest.fixture(scope="module")
def demo_ws(make_demo_ws: Callable[..., Path]) -> Path:
    """A small synthetic workspace (6 listeners, 30 days, seed 5), built with the gates."""
    return make_demo_ws("quality-demo", users=6, seed=5)


def _user(cfg: Workspace) -> tuple[int, str]:
    u = sorted(list_users(cfg.lake), key=lambda u: u["handle"])[0]
    return int(u["user_key"]), u["handle"]


def _plays(cfg: Workspace, user_key: int) -> pa.Table:
    return pq.read_table(Path(cfg.lake_url) / zones.curated_user_file("plays", user_key))


def _write_bad(cfg: Workspace, table: str, user_key: int, rows: pa.Table) -> None:
    """A bad Parquet file in the curated zone, next to the user's real partition."""
    path = Path(cfg.lake_url) / zones.curated_table_dir(table) / f"user_key={user_key}" / "bad.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, path)


def _one_music_row(cfg: Workspace, user_key: int, **changes: object) -> pa.Table:
    plays = _plays(cfg, user_key)
    row = plays.filter(pa.compute.equal(plays["content_type"], "track")).slice(0, 1).to_pylist()[0]
    row.update(changes)
    return pa.Table.from_pylist([row], schema=PLAYS)


def _failed_build(cfg: Workspace) -> dict[tuple[str, str], quality.GateResult]:
    before = read_pointer(cfg)
    files = sorted(cfg.warehouse_dir.glob("wh-*.duckdb"))
    with pytest.raises(QualityGateError) as info:
        build(cfg, force=True)
    assert read_pointer(cfg) == before, "a failed gate must not switch the warehouse"
    con = open_warehouse(cfg)  # the previous warehouse is still usable
    assert con.execute("SELECT count(*) FROM fact_play").fetchone()[0] > 0
    con.close()
    assert sorted(cfg.warehouse_dir.glob("wh-*.duckdb")) == files, "the discarded build file is removed"
    assert "quality gates failed" in str(info.value) and info.value.hint
    return {(r.check_name, r.table_name): r for r in info.value.failed}


def test_demo_passes_every_gate(demo_ws: Path) -> None:
    cfg = open_workspace(demo_ws)
    results = quality.check_current(cfg)
    assert results and all(r.passed for r in results), [r.describe() for r in results if not r.passed]
    names = {(r.check_name, r.table_name) for r in results}
    for t in ("fact_play", "dim_user", "agg_user_day", "bridge_track_artist", "dim_date"):
        assert ("primary_key_unique", t) in names and ("not_null", t) in names
    assert ("references:track_id", "fact_play") in names
    assert ("references:user_key", "agg_user_track_month") in names
    assert ("timestamps_in_range", "fact_play") in names and ("ms_played_non_negative", "fact_play") in names
    recon = {r.table_name: r for r in results if r.check_name.startswith("reconcile")}
    assert set(recon) == {"cur_plays", "fact_play", "fact_episode_play"}
    con = duckdb.connect()
    curated = con.execute(f"SELECT count(*) FROM read_parquet('{demo_ws}/lake/curated/plays/*/*.parquet')").fetchone()
    assert recon["cur_plays"].details["actual"] == curated[0] == recon["cur_plays"].details["expected"]
    assert recon["cur_plays"].details["read"] - recon["cur_plays"].details["duplicates"] == curated[0]
    # The demo's build ran the gates and stored them for the dashboard.
    wh = open_warehouse(cfg)
    stored = wh.execute("SELECT check_name, table_name, status FROM meta_quality").fetchall()
    wh.close()
    assert len(stored) > 50 and {(c, t) for c, t, _ in stored} <= names and {s for _, _, s in stored} == {"pass"}
    assert quality.summary_line(results) == f"{len(results)}/{len(results)} gates passed"


def test_duplicate_playback_fails_primary_key(cfg: Workspace) -> None:
    uk, handle = _user(cfg)
    dup = _plays(cfg, uk).slice(3, 2)  # two real playbacks again, same ids
    _write_bad(cfg, "plays", uk, dup)
    failed = _failed_build(cfg)
    pk = failed[("primary_key_unique", "fact_play")]
    assert sorted(k["play_id"] for k in pk.sample_keys) == sorted(dup["play_id"].to_pylist())
    assert pk.failing_rows == 4
    recon = failed[("reconcile_raw_to_curated", "cur_plays")]
    assert recon.sample_keys == [{"user_key": uk, "handle": handle, "expected": recon.sample_keys[0]["expected"],
                                  "actual": recon.sample_keys[0]["expected"] + 2}]


def test_lost_curated_rows_fail_reconciliation(cfg: Workspace) -> None:
    uk, handle = _user(cfg)
    path = Path(cfg.lake_url) / zones.curated_user_file("plays", uk)
    plays = pq.read_table(path)
    pq.write_table(plays.slice(0, plays.num_rows - 7), path)
    failed = _failed_build(cfg)
    assert set(failed) == {("reconcile_raw_to_curated", "cur_plays")}
    r = failed[("reconcile_raw_to_curated", "cur_plays")]
    assert r.failing_rows == 7
    assert r.sample_keys == [{"user_key": uk, "handle": handle, "expected": plays.num_rows,
                              "actual": plays.num_rows - 7}]


@pytest.mark.parametrize("when", [dt.datetime(2031, 1, 1, 12), dt.datetime(2004, 3, 1, 12)])
def test_out_of_range_timestamp_fails(cfg: Workspace, when: dt.datetime) -> None:
    uk, _ = _user(cfg)
    bad = _one_music_row(cfg, uk, ended_at=when, play_id="bad-ts-play", ms_played=61_000)
    _write_bad(cfg, "plays", uk, bad)
    failed = _failed_build(cfg)
    r = failed[("timestamps_in_range", "fact_play")]
    assert r.failing_rows == 1
    assert r.sample_keys[0]["play_id"] == "bad-ts-play"
    assert r.sample_keys[0]["ended_at"].startswith(str(when.year))


def test_negative_ms_played_fails(cfg: Workspace) -> None:
    uk, _ = _user(cfg)
    _write_bad(cfg, "plays", uk, _one_music_row(cfg, uk, ms_played=-5, play_id="bad-ms-play"))
    failed = _failed_build(cfg)
    r = failed[("ms_played_non_negative", "fact_play")]
    assert r.sample_keys == [{"play_id": "bad-ms-play", "ms_played": -5}]


def test_null_in_not_null_column_fails(cfg: Workspace) -> None:
    uk, _ = _user(cfg)
    _write_bad(cfg, "plays", uk, _one_music_row(cfg, uk, source=None, play_id="bad-null-play"))
    failed = _failed_build(cfg)
    r = failed[("not_null", "fact_play")]
    assert r.sample_keys == [{"play_id": "bad-null-play", "null_columns": "source"}]


def test_unknown_user_in_library_fails_reference(cfg: Workspace) -> None:
    stranger = 4242
    rows = pa.Table.from_pylist([{"user_key": stranger, "track_id": "0" * 22, "track_name": "x", "artist_name": "y",
                                  "album_name": "z", "saved_at": None, "source": "api"}], schema=SAVED_TRACKS)
    _write_bad(cfg, "saved_tracks", stranger, rows)
    failed = _failed_build(cfg)
    r = failed[("references:user_key", "fact_saved_track")]
    assert r.sample_keys == [stranger] and r.failing_rows == 1
    assert TABLES["fact_saved_track"].column("user_key").references == "dim_user.user_key"


def test_tampered_tables_fail_reference_and_fact_reconciliation(cfg: Workspace) -> None:
    """Tamper with the built tables themselves: a dimension row goes missing and fact rows disappear."""
    uk, handle = _user(cfg)
    con = duckdb.connect(str(current_warehouse_file(cfg)))
    artist = con.execute("SELECT artist_id FROM fact_play WHERE user_key = ? GROUP BY 1 ORDER BY count(*) DESC "
                         "LIMIT 1", [uk]).fetchone()[0]
    n_artist = con.execute("SELECT count(*) FROM fact_play WHERE artist_id = ?", [artist]).fetchone()[0]
    con.execute("DELETE FROM dim_artist WHERE artist_id = ?", [artist])
    con.execute("DELETE FROM fact_play WHERE play_id IN (SELECT play_id FROM fact_play WHERE user_key = ? "
                "ORDER BY play_id LIMIT 3)", [uk])
    con.close()
    results = {(r.check_name, r.table_name): r for r in quality.check_current(cfg)}
    ref = results[("references:artist_id", "fact_play")]
    assert ref.status == "fail" and ref.sample_keys == [artist] and n_artist - 3 <= ref.failing_rows <= n_artist
    assert results[("references:artist_id", "dim_track")].sample_keys == [artist]
    recon = results[("reconcile_curated_to_facts", "fact_play")]
    assert recon.status == "fail" and recon.failing_rows == 3
    assert recon.sample_keys[0]["user_key"] == uk and recon.sample_keys[0]["handle"] == handle
    assert recon.sample_keys[0]["expected"] - recon.sample_keys[0]["actual"] == 3
    assert results[("reconcile_raw_to_curated", "cur_plays")].passed


def test_sample_keys_capped_and_stored(cfg: Workspace) -> None:
    uk, _ = _user(cfg)
    many = _plays(cfg, uk)
    many = many.filter(pa.compute.equal(many["content_type"], "track")).slice(0, 30)
    many = many.set_column(many.schema.get_field_index("ms_played"), "ms_played", pa.array([-1] * 30, pa.int64()))
    many = many.set_column(many.schema.get_field_index("play_id"), "play_id",
                           pa.array([f"neg-{i:02d}" for i in range(30)]))
    _write_bad(cfg, "plays", uk, many)
    failed = _failed_build(cfg)
    r = failed[("ms_played_non_negative", "fact_play")]
    assert r.failing_rows == 30 and len(r.sample_keys) == quality.MAX_KEYS
    # Stored form, as the dashboard reads it.
    con = duckdb.connect()
    con.execute("CREATE TABLE meta_quality (run_id VARCHAR, check_name VARCHAR, table_name VARCHAR, status VARCHAR, "
                "failing_rows BIGINT, sample_keys VARCHAR, checked_at TIMESTAMP)")
    quality.store_results(con, "r1", [r])
    keys = json.loads(con.execute("SELECT sample_keys FROM meta_quality").fetchone()[0])
    assert len(keys) == 20 and keys[0]["ms_played"] == -1
