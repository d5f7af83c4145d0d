"""Incremental builds: after each kind of change, a build that recomputes only what changed leaves every table of
the warehouse equal, row for row, to a full rebuild of the same lake (`build --force` on a copy)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tunelake.analytics.features import KEPT_INPUTS, compute_features
from tunelake.curate.catalog import import_catalog
from tunelake.curate.ingest import import_paths
from tunelake.lake import manifest
from tunelake.pipeline import build, run
from tunelake.pipeline.runlog import read_run_logs
from tunelake.synthetic.world import generate_world
from tunelake.warehouse import rollups
from tunelake.warehouse.incremental import REBUILT, STATE
from tunelake.warehouse.store import current_warehouse_file, open_warehouse, read_pointer
from tunelake.warehouse.tables import TABLES
from tunelake.workspace import Workspace, open_workspace

SKIP_TABLES = {"meta_run", "meta_quality"}  # run ids and times: they differ between any two runs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inc-world")
    generate_world(out, users=7, days=40, seed=23, account_data=False)
    return out


def _listeners(world: Path) -> list[str]:
    return sorted(p.name for p in (world / "exports").iterdir())


def _truncated(world: Path, handle: str, before: str, out: Path) -> Path:
    """The listener's export without the plays from `before` on (ISO time): their history one day earlier."""
    src, dst = world / "exports" / handle, out / handle
    for f in sorted(src.rglob("*.json")):
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        records = json.loads(f.read_text())
        target.write_text(json.dumps([r for r in records if r["ts"] < before]))
    return dst


def _last_day(world: Path, handle: str) -> str:
    ts = max(r["ts"] for f in (world / "exports" / handle).rglob("*.json") for r in json.loads(f.read_text())
             if r.get("spotify_track_uri"))
    return ts[:10] + "T00:00:00Z"


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return sorted(r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = current_database()"
    ).fetchall() if r[0] not in SKIP_TABLES)


def assert_same_as_full_rebuild(ws: Workspace, tmp_path: Path) -> None:
    """Copy the workspace, rebuild it from scratch, and compare every table (and the kept state) row for row."""
    full = tmp_path / f"full-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(ws.root, full)
    fws = open_workspace(full)
    info = build(fws, force=True)
    assert read_run_logs(fws.lake)[-1]["steps"][0]["details"]["mode"] == "full"
    assert info.rows
    a = duckdb.connect(str(current_warehouse_file(ws)), read_only=True)
    a.execute(f"ATTACH '{current_warehouse_file(fws)}' AS full_build (READ_ONLY)")
    try:
        tables = _tables(a)
        assert {"fact_play", "dim_track", "agg_user_day", "dim_user", "dim_date"} <= set(tables)
        assert tables == sorted(r[0] for r in a.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND database_name = 'full_build'"
        ).fetchall() if r[0] not in SKIP_TABLES)
        # the state, and the record of what incremental builds recomputed, differ by definition
        kept = sorted(r[0] for r in a.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
                                              "AND database_name = current_database()", [STATE]).fetchall()
                      if r[0] not in ("state", "inputs", REBUILT, KEPT_INPUTS))
        # tables stored in user_key order keep each listener's rows together (a listener's filter skips the rest)
        for spec in (t for t in TABLES.values() if t.cluster_by == ("user_key",)):
            for db in ("main", "full_build.main"):
                runs, users = a.execute(f"""
                    SELECT count(*) FILTER (WHERE prev IS DISTINCT FROM user_key), count(DISTINCT user_key)
                    FROM (SELECT user_key, lag(user_key) OVER (ORDER BY rowid) AS prev FROM {db}.{spec.name})
                    """).fetchone()
                assert runs == users > 0, (db, spec.name)
        # the rollups too: an incremental build recomputes only the tracks and artists whose monthly rows changed
        assert rollups.fresh(a)
        for name in [*tables, *(f"{STATE}.{k}" for k in kept), *(f"{rollups.SCHEMA}.{t}" for t in rollups.TABLES)]:
            local = name if "." in name else f"main.{name}"
            n = a.execute(f"SELECT count(*) FROM {local}").fetchone()[0]
            assert n == a.execute(f"SELECT count(*) FROM full_build.{local}").fetchone()[0], name
            # a day's completion sum is a float sum, whose last bits depend on the order of fact_play's rows
            sel = "* EXCLUDE (completion_sum), round(completion_sum, 6)" if name.endswith(".days") else "*"
            _assert_same_rows(a, name, local, sel)
    finally:
        a.close()


def _assert_same_rows(a: duckdb.DuckDBPyConnection, name: str, local: str, sel: str) -> None:
    """The same multiset of rows (of the selected columns) in this file's table and the full build's."""
    extra = a.execute(f"SELECT count(*) FROM (SELECT {sel} FROM {local} EXCEPT ALL "
                      f"SELECT {sel} FROM full_build.{local})").fetchone()[0]
    missing = a.execute(f"SELECT count(*) FROM (SELECT {sel} FROM full_build.{local} EXCEPT ALL "
                        f"SELECT {sel} FROM {local})").fetchone()[0]
    assert (extra, missing) == (0, 0), f"{name}: {extra} rows only incremental, {missing} only full"


def _three_built_then_a_fourth(world: Path, tmp_path: Path) -> tuple[Workspace, list[str]]:
    """Three listeners imported and built, then a fourth imported (not built yet)."""
    ws = open_workspace(tmp_path / "ws")
    handles = _listeners(world)
    for h in handles[:3]:
        import_paths(ws, [str(world / "exports" / h)], h)
    build(ws)
    import_paths(ws, [str(world / "exports" / handles[3])], handles[3])
    return ws, handles


def _last_build(ws: Workspace) -> dict:
    steps = [s for r in read_run_logs(ws.lake) for s in r["steps"] if s["step"] == "build" and s["status"] == "ok"]
    return steps[-1]["details"]


def test_incremental_builds_equal_full_rebuilds(world: Path, tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    handles = _listeners(world)
    late, grower = handles[-1], handles[0]
    cut = _last_day(world, grower)
    import_paths(ws, [str(_truncated(world, grower, cut, tmp_path / "early"))], grower)
    for h in handles[1:-1]:
        import_paths(ws, [str(world / "exports" / h)], h)
    build(ws)
    assert _last_build(ws)["mode"] == "full"
    with open_warehouse(ws) as con:
        assert con.execute(f"SELECT count(*) FROM {STATE}.inputs").fetchone()[0] == len(handles) - 1

    # 1. One listener's new day of plays: only that listener is recomputed.
    import_paths(ws, [str(world / "exports" / grower)], grower)
    build(ws)
    details = _last_build(ws)
    assert details["mode"] == "incremental", details["why"]
    assert details["listeners_rebuilt"] == 1
    with open_warehouse(ws) as con:
        assert con.execute("SELECT max(ended_at) FROM fact_play WHERE user_key = ?",
                           [manifest.user_key_for(grower)]).fetchone()[0].strftime("%Y-%m-%d") >= cut[:10]
    assert_same_as_full_rebuild(ws, tmp_path)

    # 2. A new listener.
    import_paths(ws, [str(world / "exports" / late)], late)
    build(ws)
    assert _last_build(ws)["mode"] == "incremental"
    assert_same_as_full_rebuild(ws, tmp_path)

    # 3. A catalogue: track rows change under every listener who played them, so they are all recomputed.
    import_catalog(ws, world / "catalog")
    build(ws)
    details = _last_build(ws)
    assert details["mode"] == "incremental"
    assert details["listeners_rebuilt"] == len(handles)
    assert_same_as_full_rebuild(ws, tmp_path)

    # 4. A listener's timezone: their local times move, nobody else's. (The file before the current one is held
    # open, so the build starts from a copy of the current one: from the older file the catalogue's change would
    # be rebuilt again too; tests/integration/test_recycle.py.)
    manifest.register_user(ws.lake, handles[2], "Asia/Tokyo")
    older = duckdb.connect(str(ws.warehouse_dir / read_pointer(ws)["previous"]), read_only=True)
    try:
        build(ws)
    finally:
        older.close()
    details = _last_build(ws)
    assert (details["mode"], details["listeners_rebuilt"]) == ("incremental", 1)
    assert details["started_from"].startswith("a copy of")
    assert_same_as_full_rebuild(ws, tmp_path)

    # 5. Another listener's timezone, from the older file (step 3's): both timezone changes are rebuilt.
    manifest.register_user(ws.lake, handles[3], "America/Lima")
    build(ws)
    details = _last_build(ws)
    assert (details["mode"], details["listeners_rebuilt"]) == ("incremental", 2)
    assert "updated in place" in details["started_from"]
    assert_same_as_full_rebuild(ws, tmp_path)


def test_full_rebuild_when_asked_or_models_changed(world: Path, tmp_path: Path) -> None:
    ws, handles = _three_built_then_a_fourth(world, tmp_path)
    build(ws, force=True)
    assert _last_build(ws)["mode"] == "full"
    assert "--force" in _last_build(ws)["why"]
    # A model setting changes every listener's rows: the state no longer matches, the build is full.
    (ws.root / "tunelake.toml").write_text("session_gap_minutes = 45\n")
    ws = open_workspace(ws.root)
    import_paths(ws, [str(world / "exports" / handles[4])], handles[4])
    build(ws)
    assert _last_build(ws)["mode"] == "full"
    assert "settings" in _last_build(ws)["why"]


def test_incremental_run_keeps_analytics_and_readers_see_whole_builds(world: Path, tmp_path: Path) -> None:
    """Through `tunelake run`: the analytics tables are rewritten for the new data, and the file readers had open
    is untouched by the update (it works on a copy). With eval_refresh_hours = 0 the run evaluates the recommenders
    again, so every table can be compared with a full rebuild's (the kept evaluation has its own test below)."""
    ws = open_workspace(tmp_path / "ws", {"eval_refresh_hours": 0})
    handles = _listeners(world)
    run(ws, jobs=[(h, [str(world / "exports" / h)]) for h in handles[:-1]], catalog=world / "catalog",
        report=False)
    before = current_warehouse_file(ws)
    reader = duckdb.connect(str(before), read_only=True)
    plays_before = reader.execute("SELECT count(*) FROM fact_play").fetchone()[0]
    run(ws, paths=[str(world / "exports" / handles[-1])], user=handles[-1], report=False)
    assert _last_build(ws)["mode"] == "incremental"
    assert reader.execute("SELECT count(*) FROM fact_play").fetchone()[0] == plays_before
    reader.close()
    with open_warehouse(ws) as con:
        assert con.execute("SELECT count(*) FROM fact_play").fetchone()[0] > plays_before
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert current_warehouse_file(ws) != before
    analytics = {t for t in tables if t.startswith(("user_features", "user_segment", "rec"))}
    assert analytics, tables
    assert_same_as_full_rebuild_with_analytics(ws, tmp_path)


def assert_same_as_full_rebuild_with_analytics(ws: Workspace, tmp_path: Path) -> None:
    """As `assert_same_as_full_rebuild`, through `tunelake run` (analytics included). The analytics tables carry
    the id of the run that wrote them, which differs; and a float summed over rows in another order can differ in
    its last bit (z-scores of segment profiles did, by ~1e-15), so doubles are compared to 9 decimal places."""
    full = tmp_path / "full-run"
    shutil.copytree(ws.root, full)
    fws = open_workspace(full)
    run(fws, force=True, report=False)
    a = duckdb.connect(str(current_warehouse_file(ws)), read_only=True)
    a.execute(f"ATTACH '{current_warehouse_file(fws)}' AS full_build (READ_ONLY)")
    try:
        for schema, name in [*(("main", t) for t in _tables(a)), (STATE, KEPT_INPUTS)]:
            cols = a.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? AND "
                             "schema_name = ? AND database_name = current_database() "
                             "AND column_name <> 'run_id'", [name, schema]).fetchall()
            assert cols, f"{schema}.{name}"
            sel = ", ".join(f'round("{c}", 9)' if ty == "DOUBLE" else f'"{c}"' for c, ty in cols)
            _assert_same_rows(a, name, f"{schema}.{name}", sel)
    finally:
        a.close()


def test_gates_after_an_incremental_build_check_the_rebuilt_listeners(world: Path, tmp_path: Path) -> None:
    """Scoped gates see a broken row of a listener they check, and only skip listeners whose rows come unchanged
    from a file that passed them."""
    from tunelake.warehouse.build import register_curated
    from tunelake.warehouse.engines import DuckDBEngine
    from tunelake.warehouse.quality import run_gates

    ws, handles = _three_built_then_a_fourth(world, tmp_path)
    build(ws)
    quality = next(s for s in read_run_logs(ws.lake)[-1]["steps"] if s["step"] == "quality")
    assert quality["status"] == "ok" and "the 1 listeners" in quality["details"]["scope"]
    copy = tmp_path / "broken.duckdb"
    shutil.copyfile(current_warehouse_file(ws), copy)
    a, b = manifest.user_key_for(handles[0]), manifest.user_key_for(handles[3])
    con = duckdb.connect(str(copy))
    con.execute("INSERT INTO fact_play SELECT * FROM fact_play WHERE user_key = ? LIMIT 1", [a])
    con.close()
    engine = DuckDBEngine(copy)
    try:
        register_curated(engine, ws.lake)
        failed = {(r.check_name, r.table_name) for r in run_gates(engine, ws.lake, users={a}) if not r.passed}
        assert ("primary_key_unique", "fact_play") in failed
        assert ("reconcile_curated_to_facts", "fact_play") in failed
        assert not [r for r in run_gates(engine, ws.lake, users={b}) if not r.passed]
        whole = {(r.check_name, r.table_name) for r in run_gates(engine, ws.lake) if not r.passed}
        assert whole == failed
    finally:
        engine.close()


def _analytics_details(ws: Workspace) -> dict:
    steps = [s for r in read_run_logs(ws.lake) for s in r["steps"] if s["step"] == "analytics" and s["status"] == "ok"]
    return steps[-1]["details"]


def test_an_incremental_run_keeps_a_recent_evaluation_and_refits_on_every_play(world: Path, tmp_path: Path) -> None:
    """The evaluation is most of a run at 10M plays; after an incremental build a recent one stands (with the id of
    the run that made it) while the recommendations are refitted on every play, the new listener's included. An
    evaluation older than eval_refresh_hours, made with another split, or a full build evaluates again."""
    import dataclasses
    from datetime import timedelta

    from tunelake.analytics.steps import evaluated_at, kept_evaluation

    ws = open_workspace(tmp_path / "ws")
    handles = _listeners(world)
    run(ws, jobs=[(h, [str(world / "exports" / h)]) for h in handles[:-1]], catalog=world / "catalog", report=False)
    first = read_run_logs(ws.lake)[-1]["run_id"]
    with open_warehouse(ws) as con:
        ev_before = con.execute("SELECT * FROM rec_evaluation ORDER BY method").df()
    assert set(ev_before["run_id"]) == {first} and int(ev_before["is_default"].sum()) == 1
    run(ws, paths=[str(world / "exports" / handles[-1])], user=handles[-1], report=False)
    second = read_run_logs(ws.lake)[-1]["run_id"]
    assert _last_build(ws)["mode"] == "incremental"
    rec = _analytics_details(ws)["recommendations"]
    assert rec["evaluation"].startswith("kept") and rec["evaluated_by"] == first
    new_key = manifest.user_key_for(handles[-1])
    with open_warehouse(ws) as con:
        ev_after = con.execute("SELECT * FROM rec_evaluation ORDER BY method").df()
        recs = con.execute("SELECT DISTINCT run_id FROM recommendations").fetchall()
        new_recs = con.execute("SELECT count(*) FROM recommendations WHERE user_key = ?", [new_key]).fetchone()[0]
    made = evaluated_at(first)
    assert made is not None
    assert kept_evaluation(ev_after, ws.settings, now=made + timedelta(hours=23)) is not None
    assert kept_evaluation(ev_after, ws.settings, now=made + timedelta(hours=24)) is None
    assert kept_evaluation(ev_after, dataclasses.replace(ws.settings, eval_test_weeks=2), now=made) is None
    assert kept_evaluation(ev_after, dataclasses.replace(ws.settings, eval_refresh_hours=0), now=made) is None
    assert ev_after.equals(ev_before)
    assert recs == [(second,)] and new_recs == 20
    run(ws, force=True, report=False)
    third = read_run_logs(ws.lake)[-1]["run_id"]
    assert _analytics_details(ws)["recommendations"]["evaluation"] == "new"
    with open_warehouse(ws) as con:
        assert {r[0] for r in con.execute("SELECT DISTINCT run_id FROM rec_evaluation").fetchall()} == {third}


def test_features_after_builds_without_analytics_aggregate_every_listener_they_rebuilt(world: Path,
                                                                                      tmp_path: Path) -> None:
    """The feature inputs kept in the file are brought up to date for every listener rebuilt since they were
    computed, also across plain builds (which do not run analytics): after run → build → build → run, the features
    equal those computed from scratch on the same file, and only the listeners those builds rebuilt were
    aggregated again."""
    ws = open_workspace(tmp_path / "ws", {"eval_refresh_hours": 0})
    handles = _listeners(world)
    run(ws, jobs=[(h, [str(world / "exports" / h)]) for h in handles[:4]], catalog=world / "catalog", report=False)
    assert _analytics_details(ws)["features"]["listeners_aggregated"] == 4
    import_paths(ws, [str(world / "exports" / handles[4])], handles[4])
    build(ws)
    cut = _last_day(world, handles[5])
    import_paths(ws, [str(_truncated(world, handles[5], cut, tmp_path / "cut"))], handles[5])
    build(ws)
    with open_warehouse(ws) as con:
        pending = {r[0] for r in con.execute(f"SELECT user_key FROM {STATE}.{REBUILT}").fetchall()}
    assert pending == {manifest.user_key_for(handles[4]), manifest.user_key_for(handles[5])}
    import_paths(ws, [str(world / "exports" / handles[5])], handles[5])  # their last day
    run(ws, report=False)
    assert _last_build(ws)["mode"] == "incremental"
    assert _analytics_details(ws)["features"]["listeners_aggregated"] == 2
    with open_warehouse(ws) as con:
        stored = con.execute("SELECT * EXCLUDE (run_id) FROM user_features ORDER BY user_key").df()
        fresh = compute_features(con)
        assert con.execute(f"SELECT count(*) FROM {STATE}.{REBUILT}").fetchone()[0] == 0
    assert len(stored) == 6
    assert list(stored["user_key"]) == list(fresh["user_key"])
    for col in fresh.columns:
        assert stored[col].round(9).tolist() == fresh[col].round(9).tolist(), col
    assert_same_as_full_rebuild_with_analytics(ws, tmp_path)
