"""The SQL models, what each one reads, and the order the build runs them in.

Every model file (`models/<name>.sql`) opens with a header naming each table or view its SELECT reads:

    -- reads: int_plays_local, dim_track

Those are other models, the curated zone's `cur_<table>` views and the `ref_*` reference views (`SOURCES`). The
build order is derived from the headers, so a new model or a new read cannot run a model before one it reads, as a
hand-kept list could. The header is a plain SQL comment rather than a Jinja `ref()` so that a model stays SQL that
DuckDB runs as written wherever it uses no macro (the analytics tests run the aggregate models that way).

A header is only as good as its model: tests/unit/warehouse/test_model_graph.py parses every model on both engines
and fails when what it reads and what it declares differ.

A model whose rows each belong to one listener, and are computed from that listener's data alone, says so:

    -- grain: user

That is what lets an incremental build recompute only the listeners whose data changed (`warehouse.incremental`).
The other models are rebuilt whole on every build, so they must be cheap: they may read per-listener models only
when those are intermediate (`int_*`) summaries, which the build then keeps in the warehouse file (`KEPT`), and
those summaries must not depend on any whole-warehouse model (else a change there would make every kept row stale).
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Callable, Collection, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Protocol

import jinja2

from tunelake.errors import TunelakeError
from tunelake.sources.types import CURATED

HEADER = "-- reads:"
_HEADER_LINE = re.compile(r"--\s*reads:(?P<names>.*)")
_GRAIN_LINE = re.compile(r"--\s*grain:\s*(?P<grain>\S+)\s*")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")

# What models read that no model builds: the views `build.register_curated` puts over the curated zone, and the
# reference tables it registers beside them.
SOURCES: frozenset[str] = frozenset({f"cur_{table}" for table in CURATED} | {"ref_country_tz"})
# Sources whose rows belong to a listener (the curated tables with a user_key, partitioned per listener).
USER_SOURCES: frozenset[str] = frozenset(f"cur_{t}" for t, schema in CURATED.items() if "user_key" in schema.names)


def _models_dir() -> Traversable:
    return resources.files("tunelake.warehouse").joinpath("models")


def model_names() -> list[str]:
    return sorted(p.name.removesuffix(".sql") for p in _models_dir().iterdir() if p.name.endswith(".sql"))


def model_text(name: str) -> str:
    return _models_dir().joinpath(f"{name}.sql").read_text()


def _header_lines(text: str) -> list[str]:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        lines.append(stripped)
    return lines


def declared_reads(name: str, text: str) -> frozenset[str]:
    """The names in a model's `-- reads:` header, which must sit in the comment lines that open the file: a header
    further down would be easy to miss when the SELECT above it changes."""
    found = [m["names"] for m in map(_HEADER_LINE.fullmatch, _header_lines(text)) if m]
    if len(found) != 1:
        problem = "has no" if not found else "has more than one"
        raise TunelakeError(f"model {name} {problem} `{HEADER}` header",
                            hint=f"open models/{name}.sql with one line `{HEADER} <table>, <table>, …` naming "
                                 "every model and view it reads")
    names = [n.strip() for n in found[0].split(",") if n.strip()]
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise TunelakeError(f"model {name} declares reads that are not table names: {', '.join(bad)}",
                            hint=f"list them comma-separated after `{HEADER}`, in lower case")
    return frozenset(names)


def declared_grain(name: str, text: str) -> str:
    """`user` when the model's opening comments say `-- grain: user`, else `all` (rebuilt whole)."""
    grains = [m["grain"] for m in map(_GRAIN_LINE.fullmatch, _header_lines(text)) if m]
    if len(grains) > 1 or (grains and grains[0] != "user"):
        raise TunelakeError(f"model {name} has a bad `-- grain:` header: {', '.join(grains)}",
                            hint="write at most one line `-- grain: user` (per-listener rows), or none")
    return grains[0] if grains else "all"


def upstream(reads: Mapping[str, Collection[str]], names: Collection[str]) -> set[str]:
    """Every model the given models read, directly or through other models."""
    out: set[str] = set()
    todo = list(names)
    while todo:
        for d in reads.get(todo.pop(), ()):
            if d in reads and d not in out:
                out.add(d)
                todo.append(d)
    return out


def kept_models(reads: Mapping[str, Collection[str]], per_user: Collection[str],
                user_sources: Collection[str] = USER_SOURCES) -> frozenset[str]:
    """The per-listener models whole-warehouse models read (kept in the warehouse between builds), after checking
    that the grains make an incremental build equal to a full one; a violation names the models involved."""
    per_user = set(per_user)
    problems = []
    for name, deps in sorted(reads.items()):
        if name in per_user:
            continue
        if direct := sorted(set(deps) & set(user_sources)):
            problems.append(f"{name} (whole) reads listener data {', '.join(direct)} directly")
        if bad := sorted(d for d in set(deps) & per_user if not d.startswith("int_")):
            problems.append(f"{name} (whole) reads per-listener tables {', '.join(bad)}")
    kept = frozenset(d for name, deps in reads.items() if name not in per_user for d in deps if d in per_user)

    for name in sorted(kept):
        if whole := sorted(d for d in upstream(reads, {name}) if d not in per_user):
            problems.append(f"{name} (kept per listener) depends on whole-warehouse models {', '.join(whole)}")
    if problems:
        raise TunelakeError("model grains do not allow incremental builds: " + "; ".join(problems),
                            hint="read listener data through an int_* model with `-- grain: user`, or make the "
                                 "model per-listener")
    return kept


def build_order(reads: Mapping[str, Collection[str]], sources: Collection[str] = SOURCES) -> list[str]:
    """Models in an order where each comes after every model it reads.

    The order is deterministic whatever the mapping's order: models run in waves, each wave being the models whose
    reads the earlier waves have all built, sorted by name within it. A read that is neither a model nor a source,
    or a cycle, is an error that names the models involved."""
    unknown = {name: sorted(set(deps) - set(reads) - set(sources)) for name, deps in reads.items()}
    unknown = {name: deps for name, deps in unknown.items() if deps}
    if unknown:
        listed = "; ".join(f"{name} reads {', '.join(deps)}" for name, deps in sorted(unknown.items()))
        raise TunelakeError(f"models read tables that no model builds and no view provides: {listed}",
                            hint="fix the name in the model's `-- reads:` header and its SELECT, or add the model")
    graph = graphlib.TopologicalSorter({name: sorted(set(deps) & set(reads)) for name, deps in reads.items()})
    try:
        graph.prepare()
    except graphlib.CycleError as exc:
        cycle = " reads ".join(reversed(exc.args[1]))  # graphlib lists each model before the models reading it
        raise TunelakeError(f"models read each other in a cycle: {cycle}",
                            hint="a model can only read models that are built before it; break the cycle") from None
    order: list[str] = []
    while graph.is_active():
        wave = sorted(graph.get_ready())
        order += wave
        graph.done(*wave)
    return order


READS: dict[str, frozenset[str]] = {name: declared_reads(name, model_text(name)) for name in model_names()}

# The build order, derived from the headers; names starting with int_ are intermediate (temporary) tables.
MODEL_ORDER: list[str] = build_order(READS)
PER_USER: frozenset[str] = frozenset(n for n in READS if declared_grain(n, model_text(n)) == "user")
KEPT: frozenset[str] = kept_models(READS, PER_USER)


class ModelSettings(Protocol):
    """The settings the models' SQL uses (all in build.MODEL_SETTINGS): `Settings` has them, and so does any object
    that names them alike, so rendering does not tie the models to how settings are loaded."""

    @property
    def stream_threshold_ms(self) -> int: ...

    @property
    def session_gap_minutes(self) -> int: ...

    @property
    def default_timezone(self) -> str: ...


def render_model(name: str, macros: Mapping[str, Callable[..., str]], settings: ModelSettings) -> str:
    """A model's SQL for one engine. Takes the engine's macros, not the engine, so a model can be rendered for any
    engine without starting it (the read checks render every model for Spark without a JVM)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(model_text(name)).render(
        **macros,
        stream_threshold_ms=settings.stream_threshold_ms,
        session_gap_ms=settings.session_gap_minutes * 60_000,
        default_timezone=str(settings.default_timezone).replace("'", ""),
    )
