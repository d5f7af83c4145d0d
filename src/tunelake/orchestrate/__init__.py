"""Dagster definitions over the same steps as `tunelake collect` and `tunelake run` (the optional `dagster` extra):
`dagster dev -m tunelake.orchestrate.dagster_defs`. Nothing here imports Dagster until that module is loaded."""
