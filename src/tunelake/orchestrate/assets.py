"""The assets: what Dagster shows and materialises. Each one is a call of the library function the CLI uses —
`curate.pull.pull` for one listener's collection, the runner's own steps (`pipeline.runner.RUN_STEPS`) for import,
warehouse, analytics and report — so the lock, the commits, the run log and the incremental build are the ones
`tunelake collect` and `tunelake run` have. Nothing here re-implements a step.

Segments and recommendations are computed into the new warehouse file before it becomes current (the runner's
build → quality → analytics → commit), so they are one multi-asset with the warehouse: they are materialised only
when the analytics step ran (it is skipped when the warehouse did not change or there is too little data)."""


from collections.abc import Iterator
from typing import Any

import dagster as dg  # no `from __future__ import annotations`: Dagster reads the config/resource annotations

from tunelake.curate.pull import pull
from tunelake.orchestrate.resource import TunelakeResource
from tunelake.pipeline.info import RunInfo, StepInfo
from tunelake.pipeline.runner import RUN_STEPS, Step, run

LISTENERS = dg.DynamicPartitionsDefinition(name="listeners")
WAREHOUSE_STEPS = ("build", "quality", "analytics", "commit")


def steps(*names: str) -> tuple[tuple[str, Step], ...]:
    """The runner's steps of these names, in the runner's order."""
    return tuple(s for s in RUN_STEPS if s[0] in names)


def _scalars(details: dict[str, Any]) -> dict[str, Any]:
    """The figures of a step's details Dagster can show as metadata (numbers and short texts)."""
    return {k: v for k, v in details.items() if isinstance(v, int | float | str) and not isinstance(v, bool)}


def _step(info: RunInfo, name: str) -> StepInfo:
    step = info.step(name)
    assert step is not None, name
    return step


class CollectConfig(dg.Config):
    """What one collection pulls (`tunelake pull --what`): recently played by default; the daily snapshot schedule
    asks for profile, top items, saved tracks, playlists and enrichment as well."""

    what: list[str] = ["recent"]


@dg.asset(partitions_def=LISTENERS, group_name="collect", kinds={"spotify"})
def listener_plays(context: dg.AssetExecutionContext, config: CollectConfig,
                   tunelake: TunelakeResource) -> dg.MaterializeResult:
    """One listener's Web API data pulled into the lake, incrementally with the `after` cursor (`tunelake pull`).
    A revoked token or a rate limit beyond `retry_after_cap_s` fails the partition; nothing is half written."""
    handle = context.partition_key
    result = pull(tunelake.workspace(), handle, config.what)
    for gap in result.gaps:
        context.log.warning(f"gap {handle}: plays from {gap['start']} to {gap['end']} may be missing — import "
                            f"{handle}'s Extended streaming history")
    return dg.MaterializeResult(metadata={
        "plays_new": result.plays_new, "plays_read": result.plays_read, "duplicates": result.duplicates,
        "merged": result.merged, "pages": result.pages, "gaps": len(result.gaps), "what": ",".join(config.what)})


@dg.asset(group_name="pipeline", kinds={"python"})
def imported_exports(context: dg.AssetExecutionContext, tunelake: TunelakeResource) -> dg.MaterializeResult:
    """The export files in the inbox (`<workspace>/inbox/<listener>/…`, zips or folders) imported through the
    runner's import step (`tunelake run`'s, many listeners at once). Files already imported are recognised by
    their hash and skipped, so materialising again adds nothing."""
    ws = tunelake.workspace()
    inbox = tunelake.inbox_dir(ws)
    jobs = [(d.name, [str(d)]) for d in sorted(inbox.iterdir()) if d.is_dir() and not d.name.startswith(".")] \
        if inbox.is_dir() else []
    info = run(ws, jobs=jobs, report=False, steps=steps("import"))
    step = _step(info, "import")
    return dg.MaterializeResult(metadata={"status": step.status, "listeners": len(jobs), "run_id": info.run_id,
                                          **_scalars(step.details)})


@dg.multi_asset(
    specs=[dg.AssetSpec("warehouse", deps=[listener_plays, imported_exports], kinds={"duckdb"},
                        description="The star schema, rebuilt incrementally when the lake changed"),
           dg.AssetSpec("segments", deps=["warehouse"], skippable=True, kinds={"scikitlearn"},
                        description="K-means listener segments, in the warehouse"),
           dg.AssetSpec("recommendations", deps=["warehouse", "segments"], skippable=True,
                        description="Recommendations and their offline evaluation, in the warehouse")],
    group_name="pipeline",
)
def warehouse_and_analytics(context: dg.AssetExecutionContext,
                            tunelake: TunelakeResource) -> Iterator[dg.MaterializeResult]:
    """`tunelake run`'s build → quality → analytics → commit: a failed gate fails the run and the previous
    warehouse stays current."""
    info = run(tunelake.workspace(), report=False, steps=steps(*WAREHOUSE_STEPS))
    build, analytics = _step(info, "build"), _step(info, "analytics")
    yield dg.MaterializeResult(asset_key="warehouse", metadata={
        "status": build.status, "run_id": info.run_id, "rows_in": build.rows_in or 0,
        "rows_out": build.rows_out or 0, **_scalars(build.details)})
    if analytics.status != "ok":
        context.log.info(f"analytics {analytics.status}: {analytics.details.get('reason', '')}")
        return
    for key in ("segments", "recommendations"):
        if isinstance(analytics.details.get(key), dict):
            yield dg.MaterializeResult(asset_key=key, metadata={"run_id": info.run_id,
                                                                **_scalars(analytics.details[key])})


@dg.asset(deps=["warehouse"], group_name="pipeline", kinds={"html"})
def report(tunelake: TunelakeResource) -> dg.MaterializeResult:
    """The HTML report from the current warehouse (`<workspace>/report.html`), skipped when it is up to date."""
    info = run(tunelake.workspace(), steps=steps("report"))
    step = _step(info, "report")
    return dg.MaterializeResult(metadata={"status": step.status, **_scalars(step.details)})
