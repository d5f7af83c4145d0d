"""The metric registry (warehouse/metrics.py) is complete against the metric layer (analytics/insights.py).

Every metric function of insights.py is run on the tiny hand-made warehouse; every field it returns must be either
a registry metric (which then has a DAX measure, or a stated reason why not) or a dimension that names an existing
model column. A new insight field with no measure fails here, and so does a registry entry naming a field that no
insight returns.
"""

from __future__ import annotations

import inspect
from typing import Any

import duckdb
import pandas as pd
import pytest

from tunelake.analytics import insights
from tunelake.warehouse.metrics import DIMENSIONS, METRICS, kpi_sql
from tunelake.warehouse.powerbi.model import build_model


def _metric_functions() -> dict[str, Any]:
    """Public insights functions that take a Filters and return a frame or a dict: the metrics."""
    out = {}
    for name, fn in vars(insights).items():
        if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != insights.__name__:
            continue
        sig = inspect.signature(fn)
        if "f" in sig.parameters and sig.return_annotation in ("pd.DataFrame", "dict[str, Any]"):
            out[name] = fn
    return out


def _outputs(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    out = {}
    for name, fn in _metric_functions().items():
        value = fn(con, insights.ALL)
        out[name] = set(value.columns) if isinstance(value, pd.DataFrame) else set(value)
    return out


def test_the_metric_functions_are_found() -> None:
    assert set(_metric_functions()) == {
        "kpis", "listening_over_time", "top_artists", "top_tracks", "top_albums", "top_genres",
        "hour_weekday_heatmap", "sessions", "session_stats", "streaks", "skip_completion", "discovery_rate",
        "diversity", "mainstreamness", "eras", "platforms", "audio_profile"}


def test_every_insight_field_is_a_metric_or_a_model_column(tiny_con: duckdb.DuckDBPyConnection) -> None:
    covered = {pair for m in METRICS for pair in m.outputs}
    model = build_model()
    columns = {f"{t.name}.{c.name}" for t in model.tables for c in t.columns}
    missing = []
    for fn, fields in _outputs(tiny_con).items():
        for field in sorted(fields):
            if (fn, field) in covered:
                continue
            if field not in DIMENSIONS:
                missing.append(f"{fn}.{field}")
            elif DIMENSIONS[field] is not None:
                assert DIMENSIONS[field] in columns, (fn, field, DIMENSIONS[field])
    assert missing == [], f"insight fields with no metric in warehouse/metrics.py: {missing}"


def test_every_metric_names_fields_an_insight_returns(tiny_con: duckdb.DuckDBPyConnection) -> None:
    outputs = _outputs(tiny_con)
    for m in METRICS:
        assert m.outputs, m.name
        for fn, field in m.outputs:
            assert field in outputs.get(fn, set()), (m.name, fn, field)
        assert (m.dax is None) == bool(m.no_dax), m.name  # no measure only with a reason
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))


def test_each_insight_field_has_at_most_one_metric() -> None:
    pairs = [pair for m in METRICS for pair in m.outputs]
    assert len(pairs) == len(set(pairs))


def test_kpis_are_selected_from_the_registry(tiny_con: duckdb.DuckDBPyConnection) -> None:
    """kpis runs the registry's SQL; the values are the hand-computed ones of the tiny warehouse (conftest.py)."""
    assert set(kpi_sql()) == set(insights.kpis(tiny_con)) == {
        "listeners", "plays", "streams", "hours", "distinct_tracks", "distinct_artists", "skips", "skip_rate",
        "mean_completion", "first_date", "last_date"}
    k = insights.kpis(tiny_con)
    assert (k["plays"], k["skips"], k["listeners"], k["distinct_artists"]) == (9, 1, 2, 4)
    assert k["skip_rate"] == pytest.approx(1 / 9)
    assert k["hours"] == pytest.approx(1_540_000 / 3_600_000)
    empty = insights.kpis(tiny_con, insights.Filters(user_keys=()))
    assert empty["plays"] == 0 and empty["skip_rate"] is None and empty["mean_completion"] is None


def test_measures_in_the_model_are_the_registry() -> None:
    model = build_model()
    in_model = [m.name for t in model.tables for m in t.measures]
    assert sorted(in_model) == sorted(m.name for m in METRICS if m.dax is not None)
    homes = {t.name for t in model.tables}
    assert all(m.table in homes for m in METRICS)
