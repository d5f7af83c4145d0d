"""`tunelake run` end to end: import → build → quality → later steps, a run log that says what happened,
idempotent re-runs, a failed step that names itself and leaves the previous warehouse current."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tunelake.cli import app
from tunelake.errors import InputError, PipelineError
from tunelake.lake import zones
from tunelake.lake.manifest import list_users
from tunelake.pipeline import read_run_logs
from tunelake.pipeline import run as run_pipeline
from tunelake.synthetic.world import generate_world
from tunelake.warehouse.store import open_warehouse, read_pointer
from tunelake.workspace import Workspace, open_workspace


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pipeline-world")
    generate_world(out, users=3, days=20, seed=3)
    return out


def _history(world: Path, i: int) -> tuple[str, str]:
    handle = sorted(p.name for p in (world / "exports").iterdir())[i]
    return str(world / "exports" / handle / "Spotify Extended Streaming History"), handle


def _statuses(run: object) -> dict[str, str]:
    return {s.step: s.status for s in run.steps}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def first_runs(world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list]:
    cfg = open_workspace(tmp_path_factory.mktemp("pipeline-ws"))
    path, handle = _history(world, 0)
    runs = [run_pipeline(cfg, paths=[path], user=handle, report=False)]
    runs.append(run_pipeline(cfg, report=False))  # nothing new
    runs.append(run_pipeline(cfg, paths=[path], user=handle, report=False))  # the same files again
    return cfg, runs


def test_first_run_imports_builds_and_checks(first_runs: tuple[Workspace, list]) -> None:
    cfg, runs = first_runs
    first = runs[0]
    assert [s.step for s in first.steps] == ["import", "build", "quality", "analytics", "commit", "report"]
    st = _statuses(first)
    assert st["import"] == st["build"] == st["quality"] == "ok" and first.status == "ok"
    imp, bld, q = first.step("import"), first.step("build"), first.step("quality")
    assert imp.rows_out == imp.details["accepted"] > 10 and imp.rows_in == imp.details["read"]
    assert bld.rows_in == imp.rows_out  # curated plays
    assert bld.details["rows"]["fact_play"] > 0 and bld.details["warehouse"] == first.warehouse
    # where the build's time went: every model and the rollups, adding up to (at most) the build's seconds
    spent = bld.details["model_seconds"]
    assert set(bld.details["rows"]) <= set(spent) and "rollups" in spent and "done" not in spent
    assert all(v >= 0 for v in spent.values()) and sum(spent.values()) <= bld.details["seconds"] + 0.01
    assert q.rows_in == q.rows_out == len(first.quality) and q.details["summary"].endswith("gates passed")
    # The warehouse that became current already lists this run's steps and gate results.
    con = open_warehouse(cfg)
    rows = dict(con.execute("SELECT step, status FROM meta_run WHERE run_id = ?", [first.run_id]).fetchall())
    nq = con.execute("SELECT count(*) FROM meta_quality WHERE run_id = ? AND status = 'pass'",
                     [first.run_id]).fetchone()[0]
    con.close()
    assert rows["import"] == rows["build"] == rows["quality"] == "ok"
    assert nq == len(first.quality)


def test_rerun_with_nothing_new_skips_and_changes_nothing(first_runs: tuple[Workspace, list]) -> None:
    cfg, runs = first_runs
    for run in runs[1:]:
        st = _statuses(run)
        assert st["build"] == st["quality"] == st["analytics"] == st["report"] == "skipped"
        assert st["import"] == "skipped"
        assert run.warehouse == runs[0].warehouse
    assert runs[2].step("import").details["already_imported"] >= 1
    assert read_pointer(cfg)["file"] == runs[0].warehouse
    logged = read_run_logs(cfg.lake)
    assert [r["run_id"] for r in logged] == [r.run_id for r in runs]
    assert all(r["status"] == "ok" for r in logged)


def test_new_user_rebuilds_and_meta_run_has_every_run(first_runs: tuple[Workspace, list], world: Path,
                                                      tmp_path: Path) -> None:
    src, _ = first_runs
    cfg = open_workspace(tmp_path / "ws")
    shutil.copytree(src.root, cfg.root)
    path, handle = _history(world, 1)
    run = run_pipeline(cfg, paths=[path], user=handle, report=False)
    assert _statuses(run)["build"] == "ok" and run.warehouse != first_runs[1][0].warehouse
    con = open_warehouse(cfg)
    users = con.execute("SELECT count(*) FROM dim_user").fetchone()[0]
    runs = con.execute("SELECT count(DISTINCT run_id) FROM meta_run").fetchone()[0]
    skipped = con.execute("SELECT count(*) FROM meta_run WHERE status = 'skipped' AND step = 'build'").fetchone()[0]
    con.close()
    assert users == 2 and runs == 4 and skipped == 2


def test_failed_quality_step_names_itself_and_keeps_warehouse(first_runs: tuple[Workspace, list],
                                                              tmp_path: Path) -> None:
    src, _ = first_runs
    cfg = open_workspace(tmp_path / "ws")
    shutil.copytree(src.root, cfg.root)
    before = read_pointer(cfg)
    lake = cfg.lake
    uk = list_users(lake)[0]["user_key"]
    good = Path(cfg.lake_url) / zones.curated_user_file("plays", uk)
    bad = good.with_name("bad.parquet")
    plays = pq.read_table(good)
    music = plays.filter(pc.equal(plays["content_type"], "track")).slice(0, 3)
    pq.write_table(music, bad)  # the same playbacks twice
    with pytest.raises(PipelineError) as info:
        run_pipeline(cfg, force=True, report=False)
    msg = str(info.value)
    assert "step 'quality' failed" in msg and "primary_key_unique on fact_play" in msg
    assert "previous warehouse is still current" in info.value.hint and "tunelake run" in info.value.hint
    assert read_pointer(cfg) == before
    failed = read_run_logs(lake)[-1]
    st = {s["step"]: s for s in failed["steps"]}
    assert failed["status"] == "failed" and st["quality"]["status"] == "failed"
    assert st["build"]["status"] == "ok" and st["build"]["details"]["discarded"] is True
    assert "primary_key_unique on fact_play" in st["quality"]["details"]["failed_gates"]
    # The manifest did not change (the corruption bypassed it), so a plain run keeps the good warehouse ...
    assert _statuses(run_pipeline(cfg, report=False))["build"] == "skipped"
    # ... fix the data and rebuild: the new warehouse records the failed run too.
    bad.unlink()
    ok = run_pipeline(cfg, force=True, report=False)
    assert _statuses(ok)["build"] == "ok"
    con = open_warehouse(cfg)
    rows = dict(con.execute("SELECT step, status FROM meta_run WHERE run_id = ?", [failed["run_id"]]).fetchall())
    fails = con.execute("SELECT table_name, sample_keys FROM meta_quality WHERE run_id = ? AND status = 'fail' "
                        "AND check_name = 'primary_key_unique'", [failed["run_id"]]).fetchall()
    con.close()
    assert rows["quality"] == "failed"
    assert fails[0][0] == "fact_play"
    assert sorted(k["play_id"] for k in json.loads(fails[0][1])) == sorted(music["play_id"].to_pylist())


def test_import_usage_error_and_failed_import_step(first_runs: tuple[Workspace, list], world: Path,
                                                   tmp_path: Path) -> None:
    cfg = open_workspace(tmp_path / "ws")
    path, handle = _history(world, 2)
    with pytest.raises(InputError, match="--user is required"):
        run_pipeline(cfg, paths=[path])
    assert read_run_logs(cfg.lake) == []  # a usage error starts no run
    broken = tmp_path / "Streaming_History_Audio_2024_0.json"
    broken.write_text('[{"ts": "2024-01-01T00:00:00Z", "ms_played": ')  # truncated JSON: the only file fails
    with pytest.raises(PipelineError, match=r"step 'import' failed.*truncated JSON") as info:
        run_pipeline(cfg, paths=[str(broken)], user=handle, report=False)
    assert "files already imported are recognised" in info.value.hint
    assert read_pointer(cfg) is None
    logged = read_run_logs(cfg.lake)[-1]
    assert logged["status"] == "failed" and logged["steps"][0]["step"] == "import"
    assert logged["steps"][0]["status"] == "failed" and len(logged["steps"]) == 1


def test_cli_run_and_status(first_runs: tuple[Workspace, list], tmp_path: Path) -> None:
    src, runs = first_runs
    ws = tmp_path / "ws"
    shutil.copytree(src.root, ws)
    runner = CliRunner()
    out = runner.invoke(app, ["-w", str(ws), "run", "--no-report"])
    assert out.exit_code == 0, out.output
    assert "skipped" in out.output and "nothing new since the last build" in out.output
    out = runner.invoke(app, ["-w", str(ws), "status", "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)[0]
    ext = next(s for s in data["lake"]["sources"] if s["source"] == "extended")
    assert data["lake"]["users"] == 1 and ext["curated_plays"] == runs[0].step("import").rows_out
    assert ext["first_play"] <= ext["last_play"] and ext["quarantined"] == 0
    tables = {t["table"]: t["rows"] for t in data["warehouse"]["tables"]}
    assert tables["fact_play"] == runs[0].step("build").details["rows"]["fact_play"]
    assert data["warehouse"]["file"] == runs[0].warehouse and data["warehouse"]["age_minutes"] >= 0
    n = len(runs[0].quality)
    assert data["warehouse"]["quality"] == {"run_id": runs[0].run_id, "gates": n, "passed": n}
    assert len(data["runs"]) == 4 and data["runs"][0]["steps"][1]["status"] == "skipped"
    out = runner.invoke(app, ["-w", str(ws), "status"])
    assert out.exit_code == 0 and "Batches by source" in out.output and "Last 4 runs" in out.output


def test_the_demo_runs_through_the_same_runner(demo_workspace: Path) -> None:
    """`tunelake demo` has no orchestration of its own: its run is a run of the runner, with every step."""
    cfg = open_workspace(demo_workspace)
    logged = read_run_logs(cfg.lake)[-1]
    assert logged["status"] == "ok"
    assert [s["step"] for s in logged["steps"]] == ["import", "build", "quality", "analytics", "commit", "report"]
    steps = {s["step"]: s for s in logged["steps"]}
    assert steps["import"]["details"]["listeners"] == 28 and steps["import"]["details"]["catalog"]["tracks"] > 0
    n = len(logged["quality"])
    assert steps["quality"]["details"]["summary"] == f"{n}/{n} gates passed"
    assert steps["commit"]["details"]["warehouse"] == read_pointer(cfg)["file"]
