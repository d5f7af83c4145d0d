"""The Dagster code location: `dagster dev -m tunelake.orchestrate.dagster_defs` with TUNELAKE_HOME set to the
workspace (docs/collect.md, "Under Dagster")."""

from __future__ import annotations

import dagster as dg

from tunelake.orchestrate.assets import imported_exports, listener_plays, report, warehouse_and_analytics
from tunelake.orchestrate.automation import (
    collect_job,
    collect_schedule,
    lake_batches_sensor,
    listeners_sensor,
    snapshot_schedule,
    warehouse_job,
)
from tunelake.orchestrate.resource import TunelakeResource

defs = dg.Definitions(
    assets=[listener_plays, imported_exports, warehouse_and_analytics, report],
    jobs=[collect_job, warehouse_job],
    schedules=[collect_schedule, snapshot_schedule],
    sensors=[listeners_sensor, lake_batches_sensor],
    resources={"tunelake": TunelakeResource()},
)
