"""The Dagster definitions (`tunelake.orchestrate`), run in-process by Dagster itself (`materialize`, sensor and
schedule contexts, `execute_in_process`) on a synthetic world and the fake Spotify server answering as the real one
(only the last 50 plays). The workspace is found the way `dagster dev` finds it: TUNELAKE_HOME and its
tunelake.toml."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest


def _need(module: str) -> None:
    """A missing dependency skips locally with a reason; under CI it is a failure, never a skip."""
    if os.environ.get("CI") == "true":
        __import__(module)
    else:
        pytest.importorskip(module, reason=f"{module} is not installed (pip install 'tunelake[dagster,api,dev]')")


for _module in ("dagster", "spotipy", "werkzeug", "requests"):
    _need(_module)

import dagster as dg  # noqa: E402

from tunelake.curate import pull  # noqa: E402
from tunelake.curate.plays import read_user_plays  # noqa: E402
from tunelake.lake import manifest  # noqa: E402
from tunelake.orchestrate.assets import (  # noqa: E402
    LISTENERS,
    imported_exports,
    listener_plays,
    report,
    warehouse_and_analytics,
)
from tunelake.orchestrate.automation import (  # noqa: E402
    collect_schedule,
    lake_batches_sensor,
    listeners_sensor,
    snapshot_schedule,
)
from tunelake.orchestrate.dagster_defs import defs  # noqa: E402
from tunelake.orchestrate.resource import TunelakeResource  # noqa: E402
from tunelake.synthetic.server import FakeSpotify  # noqa: E402
from tunelake.synthetic.world import generate_world  # noqa: E402
from tunelake.warehouse.store import open_warehouse  # noqa: E402
from tunelake.workspace import Workspace, open_workspace  # noqa: E402

HANDLES = ["listener-0001", "listener-0002", "listener-0003"]
ASSETS = [listener_plays, imported_exports, warehouse_and_analytics, report]
RESOURCES = {"tunelake": TunelakeResource()}  # the definitions' own resource: TUNELAKE_HOME, read at run time


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dagster-world")
    generate_world(out, users=4, days=21, seed=5)
    return out


@pytest.fixture
def srv(world: Path) -> Iterator[FakeSpotify]:
    with FakeSpotify(world, recent_limit=50) as s:
        yield s


@pytest.fixture
def ws(tmp_path: Path, srv: FakeSpotify, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "tunelake.toml").write_text(f'spotify_api_url = "{srv.api_url}"\n'
                                        f'spotify_accounts_url = "{srv.accounts_url}"\n'
                                        'spotify_client_id = "tunelake-test"\nlock_timeout_s = 60\n')
    monkeypatch.setenv("TUNELAKE_HOME", str(root))
    cfg = open_workspace(root)
    for h in HANDLES:
        pull.login(cfg, h, method="auto")
    return cfg


@pytest.fixture
def instance(ws: Workspace) -> Iterator[dg.DagsterInstance]:
    """A temporary Dagster instance whose listener partitions the listeners sensor has filled."""
    with dg.instance_for_test() as inst:
        result = listeners_sensor(dg.build_sensor_context(instance=inst, resources=RESOURCES))
        (request,) = result.dynamic_partitions_requests
        assert request.partitions_def_name == LISTENERS.name and sorted(request.partition_keys) == HANDLES
        inst.add_dynamic_partitions(LISTENERS.name, list(request.partition_keys))
        again = listeners_sensor(dg.build_sensor_context(instance=inst, resources=RESOURCES))
        assert not again.dynamic_partitions_requests and again.skip_reason is not None
        yield inst


def api_plays(ws: Workspace, handle: str) -> list[int]:
    t = read_user_plays(ws.lake, manifest.user_key_for(handle))
    t = t.filter(pc.equal(t["source"], "api"))
    return sorted(pc.cast(t["ended_at"], "int64").to_pylist())


def collect(instance: dg.DagsterInstance, handle: str) -> int:
    """Materialise one listener partition; the plays it added, as its materialisation says."""
    result = dg.materialize([listener_plays], partition_key=handle, instance=instance, resources=RESOURCES)
    assert result.success
    (event,) = result.asset_materializations_for_node("listener_plays")
    assert event.partition == handle
    return event.metadata["plays_new"].value


def times_after(srv: FakeSpotify, start: int, n: int) -> int:
    """A time by which no listener has played more than `n` tracks after `start` (and some listener has)."""
    later = [[ms for ms, _ in srv.world.listener(h).plays if ms > start] for h in HANDLES]
    return min(p[n - 1] for p in later if len(p) >= n)


def test_the_definitions_load_and_their_config_validates() -> None:
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert keys == {"listener_plays", "imported_exports", "warehouse", "segments", "recommendations", "report"}
    collect_job = defs.resolve_job_def("collect_job")
    assert dg.validate_run_config(collect_job, {"ops": {"listener_plays": {"config": {"what": ["recent", "top"]}}}})
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(collect_job, {"ops": {"listener_plays": {"config": {"what": "recent"}}}})
    assert defs.resolve_schedule_def("collect_schedule").cron_schedule == "*/10 * * * *"
    assert defs.resolve_sensor_def("lake_batches_sensor").job_name == "warehouse_job"
    assert defs.resolve_assets_def("listener_plays").partitions_def == LISTENERS


def test_listener_partitions_collect_every_play_the_server_had(ws: Workspace, srv: FakeSpotify,
                                                               instance: dg.DagsterInstance) -> None:
    start = min(srv.world.listener(h).plays[40][0] for h in HANDLES)  # nobody has 50 plays visible yet
    srv.visible_until_ms = start
    first = {h: collect(instance, h) for h in HANDLES}
    for h in HANDLES:
        truth = [ms for ms, _ in srv.truth(h)]
        assert api_plays(ws, h) == truth and first[h] == len(truth), h
    srv.visible_until_ms = times_after(srv, start, 45)  # at most 45 new plays each: inside the horizon
    second = {h: collect(instance, h) for h in HANDLES}
    for h in HANDLES:
        truth = [ms for ms, _ in srv.truth(h)]
        assert api_plays(ws, h) == truth, h
        assert second[h] == len(srv.truth(h, after_ms=start)), h
    assert sum(second.values()) > 0
    assert collect(instance, HANDLES[0]) == 0  # nothing new: the cursor kept its place


def test_warehouse_counts_equal_curated_plays_and_the_sensor_follows_new_batches(
        ws: Workspace, srv: FakeSpotify, instance: dg.DagsterInstance) -> None:
    srv.visible_until_ms = times_after(srv, 0, 45)  # nobody has more than 45 plays visible
    for h in HANDLES:
        collect(instance, h)
    result = dg.materialize(ASSETS, instance=instance, resources=RESOURCES,
                            selection=["warehouse", "segments", "recommendations", "report"])
    assert result.success
    (wh,) = result.asset_materializations_for_node("warehouse_and_analytics")[:1]
    assert wh.metadata["status"].value == "ok"
    assert (ws.root / "report.html").stat().st_size > 0

    def fact_counts() -> dict[int, int]:
        with open_warehouse(ws) as con:
            return dict(con.execute("SELECT user_key, count(*) FROM fact_play GROUP BY ALL").fetchall())

    def curated_counts() -> dict[int, int]:
        rows = {manifest.user_key_for(h): read_user_plays(ws.lake, manifest.user_key_for(h)).num_rows
                for h in HANDLES}
        return {k: n for k, n in rows.items() if n}  # a listener with no plays yet has no fact rows

    assert fact_counts() == curated_counts() and sum(curated_counts().values()) > 0

    first = lake_batches_sensor(dg.build_sensor_context(instance=instance, resources=RESOURCES))
    (request,) = first.run_requests
    assert first.cursor == request.run_key == manifest.fingerprint(ws.lake)
    quiet = lake_batches_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                                        resources=RESOURCES))
    assert not quiet.run_requests and quiet.skip_reason is not None and quiet.cursor is None

    srv.visible_until_ms = times_after(srv, srv.visible_until_ms, 10)
    assert collect(instance, HANDLES[1]) > 0  # a new batch lands
    after = lake_batches_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                                        resources=RESOURCES))
    (new_request,) = after.run_requests
    assert new_request.run_key == after.cursor == manifest.fingerprint(ws.lake) != first.cursor
    # the job the sensor asks for, run as the definitions declare it: an incremental update
    job = defs.resolve_job_def(lake_batches_sensor.job_name)
    assert job.execute_in_process(instance=instance, run_config=new_request.run_config).success
    assert fact_counts() == curated_counts()
    with open_warehouse(ws) as con:
        mode = con.execute("SELECT details FROM meta_run WHERE step = 'build' ORDER BY ended_at DESC LIMIT 1"
                           ).fetchone()[0]
    assert '"incremental"' in mode


def test_inbox_import_is_idempotent_and_schedules_ask_for_every_partition(
        ws: Workspace, world: Path, instance: dg.DagsterInstance) -> None:
    h = "listener-0004"  # not connected: an export-only listener
    shutil.copytree(world / "exports" / h, ws.root / "inbox" / h)
    first = dg.materialize([imported_exports], instance=instance, resources=RESOURCES)
    meta = first.asset_materializations_for_node("imported_exports")[0].metadata
    rows = read_user_plays(ws.lake, manifest.user_key_for(h)).num_rows
    assert meta["status"].value == "ok" and meta["listeners"].value == 1 and rows > 0
    batches = len(manifest.list_batches(ws.lake, handle=h))
    assert meta["new_files"].value == batches > 0
    second = dg.materialize([imported_exports], instance=instance, resources=RESOURCES)
    meta2 = second.asset_materializations_for_node("imported_exports")[0].metadata
    assert meta2["status"].value == "skipped" and meta2["new_files"].value == 0
    assert len(manifest.list_batches(ws.lake, handle=h)) == batches
    assert read_user_plays(ws.lake, manifest.user_key_for(h)).num_rows == rows

    context = dg.build_schedule_context(instance=instance)
    recent = list(collect_schedule(context))
    assert [r.partition_key for r in recent] == HANDLES and all(not r.run_config for r in recent)
    daily = list(snapshot_schedule(context))
    assert [r.partition_key for r in daily] == HANDLES
    job = defs.resolve_job_def("collect_job")
    assert all(dg.validate_run_config(job, r.run_config)["ops"]["listener_plays"]["config"]["what"]
               == list(pull.WHAT_ALL) for r in daily)


def test_a_revoked_token_fails_only_that_partition(ws: Workspace, srv: FakeSpotify,
                                                   instance: dg.DagsterInstance) -> None:
    import requests

    bad, good = HANDLES[2], HANDLES[1]
    srv.visible_until_ms = times_after(srv, 0, 45)  # inside the 50-play horizon
    assert requests.post(f"{srv.url}/_fault", json={"kind": "revoke_tokens", "user": bad}, timeout=10).ok
    result = dg.materialize([listener_plays], partition_key=bad, instance=instance, resources=RESOURCES,
                            raise_on_error=False)
    assert not result.success and not result.asset_materializations_for_node("listener_plays")
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.cause.message if failure.step_failure_data.error.cause \
        else failure.step_failure_data.error.message
    assert "TokenRevokedError" in message and bad in message, message
    assert api_plays(ws, bad) == []
    assert collect(instance, good) > 0  # the other listeners go on
    assert api_plays(ws, good) == [ms for ms, _ in srv.truth(good)]


def test_segments_and_recommendations_materialise_when_there_is_enough_to_learn_from(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate_world(tmp_path / "world", users=8, days=45, seed=5)
    root = tmp_path / "ws"
    for folder in (tmp_path / "world" / "exports").iterdir():
        shutil.copytree(folder, root / "inbox" / folder.name)
    monkeypatch.setenv("TUNELAKE_HOME", str(root))
    with dg.instance_for_test() as inst:
        result = dg.materialize(ASSETS, instance=inst, resources=RESOURCES,
                                selection=["imported_exports", "warehouse", "segments", "recommendations"])
    assert result.success
    meta = {e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}
    assert meta["imported_exports"]["listeners"] == 8
    with open_warehouse(open_workspace(root)) as con:
        listeners = con.execute("SELECT count(DISTINCT user_key) FROM fact_play").fetchone()[0]
        segmented = con.execute("SELECT count(*) FROM user_segment").fetchone()[0]
        recommended = con.execute("SELECT count(*) FROM recommendations").fetchone()[0]
        run_ids = {r[0] for r in con.execute("SELECT DISTINCT run_id FROM user_segment").fetchall()}
    assert meta["segments"]["rows"] == segmented == listeners == 8
    assert meta["recommendations"]["rows"] == recommended > 0
    assert run_ids == {meta["warehouse"]["run_id"]} == {meta["segments"]["run_id"]}
