"""When the assets run: a schedule collects every listener every 10 minutes (`collect_interval_s`'s default,
well inside the 50-play horizon) and a daily one takes the snapshots; a sensor keeps the listener partitions in
step with the connected listeners (a token in `secrets/tokens/`); another runs the warehouse job when the lake's
committed batches changed — the collector's "the pipeline follows the data"."""


from collections.abc import Iterator

import dagster as dg  # no `from __future__ import annotations`: Dagster reads the config/resource annotations

from tunelake.curate.listener_state import connected_handles
from tunelake.curate.pull import WHAT_ALL
from tunelake.lake import manifest
from tunelake.orchestrate.assets import LISTENERS, listener_plays
from tunelake.orchestrate.resource import TunelakeResource
from tunelake.settings import Settings

collect_job = dg.define_asset_job("collect_job", selection=[listener_plays],
                                  description="Pull one listener's recently played (a partition per listener)")
warehouse_job = dg.define_asset_job("warehouse_job", selection=["warehouse", "segments", "recommendations", "report"],
                                    description="build → quality → analytics → commit, then the report")


def _listener_runs(context: dg.ScheduleEvaluationContext, what: list[str] | None = None) -> Iterator[dg.RunRequest]:
    config = {"ops": {"listener_plays": {"config": {"what": what}}}} if what else None
    for handle in sorted(context.instance.get_dynamic_partitions(LISTENERS.name)):
        yield dg.RunRequest(partition_key=handle, run_config=config or {})


@dg.schedule(cron_schedule="*/10 * * * *", job=collect_job)
def collect_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    """Recently played of every listener partition, every 10 minutes."""
    yield from _listener_runs(context)


@dg.schedule(cron_schedule="17 4 * * *", job=collect_job)
def snapshot_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
    """Once a day: recently played plus profile, top items, saved tracks, playlists and enrichment."""
    yield from _listener_runs(context, list(WHAT_ALL))


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def listeners_sensor(context: dg.SensorEvaluationContext, tunelake: TunelakeResource) -> dg.SensorResult:
    """A partition for every listener who logged in (`tunelake auth login --user NAME`)."""
    known = set(context.instance.get_dynamic_partitions(LISTENERS.name))
    new = [h for h in connected_handles(tunelake.workspace()) if h not in known]
    if not new:
        return dg.SensorResult(skip_reason="no new connected listener")
    return dg.SensorResult(dynamic_partitions_requests=[LISTENERS.build_add_request(new)])


@dg.sensor(job=warehouse_job, minimum_interval_seconds=Settings().pipeline_min_interval_s)
def lake_batches_sensor(context: dg.SensorEvaluationContext, tunelake: TunelakeResource) -> dg.SensorResult:
    """The warehouse job when the set of committed lake batches changed (`lake.manifest.fingerprint`, what the
    build compares too), at most every `pipeline_min_interval_s`'s default (15 min)."""
    lake = tunelake.workspace().lake
    fingerprint = manifest.fingerprint(lake)
    if fingerprint == context.cursor:
        return dg.SensorResult(skip_reason="no new lake batch")
    if context.cursor is None and not manifest.list_batches(lake):
        return dg.SensorResult(skip_reason="the lake has no batches yet", cursor=fingerprint)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=fingerprint)], cursor=fingerprint)
