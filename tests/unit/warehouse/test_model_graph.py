"""The models' `-- reads:` headers and the build order derived from them: every model reads exactly what it
declares (parsed with sqlglot from the SQL each engine runs), each runs after every model it reads, and a read
nobody builds or a cycle stops the build with the models named."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from itertools import pairwise
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from tunelake.errors import TunelakeError
from tunelake.lake.store import Lake
from tunelake.settings import Settings
from tunelake.warehouse import build as build_module
from tunelake.warehouse.build import register_curated
from tunelake.warehouse.engines.duckdb import DUCKDB_MACROS, DuckDBEngine
from tunelake.warehouse.engines.spark import SPARK_MACROS
from tunelake.warehouse.model_graph import (
    KEPT,
    MODEL_ORDER,
    PER_USER,
    READS,
    SOURCES,
    build_order,
    declared_grain,
    declared_reads,
    kept_models,
    model_names,
    model_text,
    render_model,
)

ENGINES: dict[str, Mapping[str, Callable[..., str]]] = {"duckdb": DUCKDB_MACROS, "spark": SPARK_MACROS}


@pytest.fixture(scope="module")
def cfg() -> Settings:
    return Settings()


def table_reads(sql: str, dialect: str) -> set[str]:
    """Every table a statement reads, as its engine parses it: table references that are not its own CTEs."""
    tree = sqlglot.parse_one(sql, read=dialect)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table)} - ctes


def read_mismatches(name: str, sql: str, dialect: str) -> list[str]:
    """What is wrong between a model's header and its SQL, one message per problem (none when they agree)."""
    declared, read = declared_reads(name, sql), table_reads(sql, dialect)
    return ([f"{name} reads {t} without declaring it in its `-- reads:` header" for t in sorted(read - declared)]
            + [f"{name} declares {t} but does not read it" for t in sorted(declared - read)])


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("name", model_names())
def test_every_model_reads_exactly_what_it_declares(name: str, engine: str, cfg: Settings) -> None:
    assert read_mismatches(name, render_model(name, ENGINES[engine], cfg), engine) == []


def test_a_planted_undeclared_read_is_caught(cfg: Settings) -> None:
    sql = render_model("agg_user_day", DUCKDB_MACROS, cfg)
    planted = sql.replace("JOIN dim_date AS d ON d.date_key = f.date_key",
                          "JOIN dim_date AS d ON d.date_key = f.date_key "
                          "JOIN dim_user AS u ON u.user_key = f.user_key "
                          "WHERE f.track_id IN (SELECT track_id FROM cur_saved_tracks)")
    assert planted != sql
    assert read_mismatches("agg_user_day", planted, "duckdb") == [
        "agg_user_day reads cur_saved_tracks without declaring it in its `-- reads:` header",
        "agg_user_day reads dim_user without declaring it in its `-- reads:` header",
    ]
    unread = sql.replace("-- reads: fact_play, dim_date", "-- reads: fact_play, dim_date, ref_country_tz")
    assert read_mismatches("agg_user_day", unread, "duckdb") == [
        "agg_user_day declares ref_country_tz but does not read it"]


def test_a_cte_is_not_a_read() -> None:
    sql = "-- reads: fact_play\nWITH dim_user AS (SELECT user_key FROM fact_play) SELECT * FROM dim_user"
    assert read_mismatches("m", sql, "duckdb") == []


def test_every_model_runs_after_each_model_it_reads() -> None:
    assert sorted(MODEL_ORDER) == model_names() == sorted(READS)
    position = {name: i for i, name in enumerate(MODEL_ORDER)}
    for name, reads in READS.items():
        for dep in reads & set(READS):
            assert position[dep] < position[name], f"{name} runs before {dep}, which it reads"
    assert build_module.MODEL_ORDER == MODEL_ORDER


def test_the_order_is_the_same_however_the_models_are_listed() -> None:
    items = list(READS.items())
    for seed in range(5):
        random.Random(seed).shuffle(items)
        assert build_order(dict(items)) == MODEL_ORDER


def test_models_run_in_waves_sorted_by_name() -> None:
    reads = {"b": set(), "a": set(), "d": {"b"}, "c": {"d", "a"}, "e": {"cur_plays"}}
    assert build_order(reads) == ["a", "b", "e", "d", "c"]


def test_every_source_a_model_reads_is_a_view_the_build_registers(tmp_path: Path) -> None:
    engine = DuckDBEngine()
    try:
        register_curated(engine, Lake(str(tmp_path / "lake")))
        views = {r[0] for r in engine.execute(  # `_arrow_*` are the engine's own plumbing behind the views
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND NOT starts_with(view_name, '_')").fetchall()}
    finally:
        engine.close()
    assert views == SOURCES
    assert set().union(*READS.values()) - set(READS) <= SOURCES


@pytest.mark.parametrize("reads", [{"a": {"b"}, "b": {"a"}}, {"a": {"a"}}, {"a": {"c"}, "b": {"a"}, "c": {"b"}}])
def test_a_cycle_is_refused_with_its_models_named(reads: dict[str, set[str]]) -> None:
    with pytest.raises(TunelakeError, match="models read each other in a cycle: ") as err:
        build_order(reads)
    cycle = str(err.value).split(": ", 1)[1].split(" reads ")
    assert cycle[0] == cycle[-1] and set(cycle) == set(reads)
    for model, read in pairwise(cycle):
        assert read in reads[model], f"the message says {model} reads {read}"


def test_a_read_that_nothing_provides_is_refused() -> None:
    with pytest.raises(TunelakeError) as err:
        build_order({"a": {"cur_plays"}, "b": {"a", "dim_nowhere"}, "c": {"cur_nowhere"}})
    assert str(err.value).endswith("b reads dim_nowhere; c reads cur_nowhere")
    assert err.value.hint and "-- reads:" in err.value.hint


def test_the_header_is_read_from_the_opening_comments() -> None:
    assert declared_reads("m", "-- why this model exists\n-- reads: a,b , c\nSELECT 1") == {"a", "b", "c"}
    assert declared_reads("m", "-- reads:\nSELECT 1") == frozenset()
    assert declared_reads("dim_date", model_text("dim_date")) == {"int_user_date_bounds"}


def test_grain_header() -> None:
    assert declared_grain("m", "-- reads: a\n-- grain: user\nSELECT 1") == "user"
    assert declared_grain("m", "-- reads: a\nSELECT 1\n-- grain: user") == "all"  # below the SELECT: not a header
    with pytest.raises(TunelakeError, match="bad `-- grain:` header"):
        declared_grain("m", "-- reads: a\n-- grain: track\nSELECT 1")


def test_grains_that_would_make_incremental_builds_wrong_are_refused() -> None:
    per_user = {"int_u", "fact_u", "int_k"}
    ok = {"int_u": {"cur_plays"}, "fact_u": {"int_u", "dim_w"}, "int_k": {"int_u"}, "dim_w": {"int_k"}}
    assert kept_models(ok, per_user) == {"int_k"}
    with pytest.raises(TunelakeError, match="dim_w \\(whole\\) reads listener data cur_plays directly"):
        kept_models({**ok, "dim_w": {"cur_plays"}}, per_user)
    with pytest.raises(TunelakeError, match="dim_w \\(whole\\) reads per-listener tables fact_u"):
        kept_models({**ok, "dim_w": {"fact_u"}, "fact_u": {"int_u"}}, per_user)
    # A kept summary built from a whole model would go stale when that model changes under other listeners.
    with pytest.raises(TunelakeError, match="int_k \\(kept per listener\\) depends on whole-warehouse models dim_v"):
        kept_models({**ok, "int_k": {"int_u", "dim_v"}, "dim_v": {"cur_catalog_tracks"}}, per_user)


def test_the_real_models_grains() -> None:
    from tunelake.warehouse.incremental import LINKS, STABLE

    assert {"int_user_track_names", "int_user_date_bounds"} == KEPT
    assert {"fact_play", "agg_user_day", "dim_user", "int_plays_local"} <= PER_USER
    assert not {"dim_track", "dim_date", "dim_artist", "int_known_tracks"} & PER_USER
    # Every whole model a per-listener model reads is either linked (a change re-runs who references it) or a
    # function of its key alone; a new read of another whole model must say which.
    read_by_listeners = {d for n in PER_USER for d in READS[n] if d in READS and d not in PER_USER}
    assert read_by_listeners <= set(LINKS) | STABLE, read_by_listeners - set(LINKS) - STABLE


@pytest.mark.parametrize("text, problem", [
    ("SELECT * FROM fact_play", "has no `-- reads:` header"),
    ("SELECT 1\n-- reads: fact_play", "has no `-- reads:` header"),
    ("-- reads: a\n-- reads: b\nSELECT 1", "has more than one `-- reads:` header"),
    ("-- reads: fact_play, main.dim_user\nSELECT 1", "declares reads that are not table names: main.dim_user"),
])
def test_a_missing_or_malformed_header_names_the_model(text: str, problem: str) -> None:
    with pytest.raises(TunelakeError, match=f"model m_bad {problem}"):
        declared_reads("m_bad", text)
