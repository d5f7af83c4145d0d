"""The star-schema build: every spec'd table with the spec's columns, totals that agree across facts and
aggregates, skip when nothing changed, a failed build that leaves the previous warehouse current."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tunelake.pipeline import StepFailed, build, run
from tunelake.pipeline.info import RunInfo, StepInfo
from tunelake.pipeline.runlog import save_run
from tunelake.pipeline.steps import build_step, commit_step
from tunelake.warehouse.build import MODEL_ORDER
from tunelake.warehouse.store import open_warehouse, read_pointer
from tunelake.warehouse.tables import TABLES, warehouse_tables
from tunelake.workspace import Workspace, open_workspace


@pytest.fixture(scope="module")
def demo_ws(make_demo_ws: Callable[..., Path]) -> Path:
    """A small synthetic workspace (5 listeners, 30 days, seed 9), built with the gates."""
    return make_demo_ws("build-demo", users=5, seed=9)


@pytest.fixture(scope="module")
def wh(demo_ws: Path) -> duckdb.DuckDBPyConnection:
    con = open_warehouse(open_workspace(demo_ws))
    yield con
    con.close()


def test_every_spec_table_built_with_spec_columns(wh: duckdb.DuckDBPyConnection) -> None:
    assert {t.name for t in warehouse_tables()} <= set(MODEL_ORDER)
    for t in warehouse_tables():
        cols = wh.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                          "ORDER BY ordinal_position", [t.name]).fetchall()
        assert [c for c, _ in cols] == t.column_names, t.name
        assert [ty for _, ty in cols] == [c.sql_type("duckdb") for c in t.columns], t.name
    for name in ("meta_run", "meta_quality"):
        cols = [r[0] for r in wh.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                         "ORDER BY ordinal_position", [name]).fetchall()]
        assert cols == TABLES[name].column_names


def test_facts_and_aggregates_agree(wh: duckdb.DuckDBPyConnection, demo_ws: Path) -> None:
    q = lambda sql: wh.execute(sql).fetchone()  # noqa: E731
    plays, ms, streams = q("SELECT count(*), sum(ms_played), count(*) FILTER (is_stream) FROM fact_play")
    assert plays > 1000
    assert q("SELECT sum(plays), sum(ms_played), sum(streams) FROM agg_user_day") == (plays, ms, streams)
    assert q("SELECT sum(plays), sum(ms_played) FROM agg_user_day_hour") == (plays, ms)
    assert q("SELECT sum(plays), sum(ms_played), sum(streams) FROM agg_user_track_month") == (plays, ms, streams)
    assert q("SELECT sum(plays), sum(ms_played) FROM agg_user_artist_month") == (plays, ms)
    # One user's month on the aggregate equals the same question on fact_play.
    uk, month = q("SELECT user_key, month_start FROM agg_user_track_month ORDER BY plays DESC LIMIT 1")
    top_fact = wh.execute(
        "SELECT f.artist_id, count(*), sum(f.ms_played) FROM fact_play f JOIN dim_date d USING (date_key) "
        "WHERE f.user_key = ? AND d.month_start = ? GROUP BY 1 ORDER BY 3 DESC, 1 LIMIT 5", [uk, month]).fetchall()
    top_agg = wh.execute(
        "SELECT artist_id, plays, ms_played FROM agg_user_artist_month WHERE user_key = ? AND month_start = ? "
        "ORDER BY 3 DESC, 1 LIMIT 5", [uk, month]).fetchall()
    assert top_agg == top_fact
    hh = wh.execute("SELECT local_weekday, local_hour, sum(plays) FROM agg_user_day_hour GROUP BY 1, 2 "
                    "ORDER BY 1, 2").fetchall()
    hf = wh.execute("SELECT local_weekday, local_hour, count(*) FROM fact_play GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
    assert hh == hf
    # Curated music rows all reach fact_play; dim_user counts them.
    curated = duckdb.connect().execute(
        f"SELECT count(*) FROM read_parquet('{demo_ws}/lake/curated/plays/*/*.parquet') "
        "WHERE content_type = 'track' AND track_id IS NOT NULL").fetchone()[0]
    assert curated == plays == q("SELECT sum(plays) FROM dim_user")[0]
    # Every session id starts at 1 per user and is contiguous.
    assert q("SELECT count(*) FROM (SELECT user_key, min(session_id) m, max(session_id) x, "
             "count(DISTINCT session_id) n FROM fact_play GROUP BY 1) WHERE m <> 1 OR x <> n")[0] == 0


def test_unchanged_inputs_skip_and_force_rebuilds(cfg: Workspace) -> None:
    before = read_pointer(cfg)
    info = build(cfg)
    assert info.skipped and info.file == before["file"] and read_pointer(cfg) == before
    forced = build(cfg, force=True, run_id="forced-1")
    assert not forced.skipped and forced.file == "wh-forced-1.duckdb" and forced.quality
    assert all(r.passed for r in forced.quality)
    assert read_pointer(cfg)["file"] == "wh-forced-1.duckdb"
    assert forced.rows["fact_play"] == before["rows"]["fact_play"]
    # Previous file kept for readers still on it; the one before that pruned.
    build(cfg, force=True, run_id="forced-2")
    assert sorted(p.name for p in cfg.warehouse_dir.glob("wh-*.duckdb")) == ["wh-forced-1.duckdb",
                                                                           "wh-forced-2.duckdb"]
    con = open_warehouse(cfg)
    runs = [r[0] for r in con.execute("SELECT DISTINCT run_id FROM meta_quality ORDER BY 1").fetchall()]
    con.close()
    assert "forced-1" in runs and "forced-2" in runs  # quality results carried forward


def test_failed_build_keeps_previous_warehouse(cfg: Workspace) -> None:
    """A step between the build and the commit fails: the new file is discarded, readers keep the old one."""
    before = read_pointer(cfg)

    def boom(ctx: object) -> None:
        raise RuntimeError("analytics exploded")

    with pytest.raises(StepFailed, match="step 'analytics' failed: RuntimeError: analytics exploded"):
        run(cfg, force=True, run_id="doomed", steps=[("build", build_step), ("analytics", boom),
                                                    ("commit", commit_step)])
    assert read_pointer(cfg) == before
    assert not (cfg.warehouse_dir / "wh-doomed.duckdb").exists()
    con = open_warehouse(cfg)
    assert con.execute("SELECT count(*) FROM fact_play").fetchone()[0] == before["rows"]["fact_play"]
    con.close()


def test_meta_run_rebuilt_from_lake_run_log(cfg: Workspace) -> None:
    lake = cfg.lake
    run = RunInfo("20260101T000000-abc123", status="failed", started_at="2026-01-01T00:00:00")
    run.steps = [StepInfo(run.run_id, "build", "2026-01-01T00:00:00", "2026-01-01T00:00:05", 10, 20, "ok"),
                 StepInfo(run.run_id, "quality", "2026-01-01T00:00:05", "2026-01-01T00:00:06", 3, 2, "failed",
                            "1 of 3 quality gates failed", {"summary": "2/3"})]
    run.quality = [{"check_name": "not_null", "table_name": "fact_play", "status": "fail", "failing_rows": 1,
                    "sample_keys": [{"play_id": "p"}]}]
    save_run(lake, run)
    build(cfg, force=True)
    con = open_warehouse(cfg)
    rows = con.execute("SELECT step, status, rows_in, rows_out, error FROM meta_run WHERE run_id = ? ORDER BY step",
                       [run.run_id]).fetchall()
    q = con.execute("SELECT check_name, status, sample_keys FROM meta_quality WHERE run_id = ?",
                    [run.run_id]).fetchall()
    con.close()
    assert rows == [("build", "ok", 10, 20, None), ("quality", "failed", 3, 2, "1 of 3 quality gates failed")]
    assert q == [("not_null", "fail", '[{"play_id": "p"}]')]
