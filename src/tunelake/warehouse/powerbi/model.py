"""The Power BI semantic model as data: which tables, how each column looks, the relationships and the measures.

Everything here is derived from `warehouse/tables.py` and the metric registry (`warehouse/metrics.py`); `tmdl.py`
only spells it out. Keys are hidden, the calendar is the date table, day and month names sort by their numbers,
and where two filter paths would lead from one table to another (Power BI refuses ambiguous models) the later,
indirect relationship is kept but inactive, so the direct fact → dimension path is the one that filters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tunelake.warehouse.metrics import METRICS, Metric
from tunelake.warehouse.tables import TABLES, Column, Table, warehouse_tables

# Beyond the gold star schema, the tables the report's Segments, Recommendations and Data quality pages read.
EXTRA_TABLES = ("user_segment", "segment_profile", "rec_evaluation", "recommendations", "meta_quality")

DATA_TYPES = {"VARCHAR": "string", "BIGINT": "int64", "INTEGER": "int64", "SMALLINT": "int64", "DOUBLE": "double",
              "BOOLEAN": "boolean", "TIMESTAMP": "dateTime", "DATE": "dateTime"}
ADDITIVE = frozenset({"plays", "streams", "skips", "ms_played", "failing_rows", "rows_in", "rows_out"})
DATE_TABLE, DATE_COLUMN = "dim_date", "date"
_ID_NAMESPACE = uuid.UUID("6f1d3c2e-5a4b-4c8d-9e7f-1a2b3c4d5e6f")
_KIND_ORDER = {"fact": 0, "agg": 1, "analytics": 2, "meta": 3, "bridge": 4, "dim": 5}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def stable_id(*parts: str) -> str:
    """A GUID that depends only on its parts, so regenerating the project changes no lineage tag (diffs stay
    small, and Power BI keeps report bindings)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class ModelColumn:
    name: str
    data_type: str
    description: str
    source_type: str  # the logical type of tables.py (VARCHAR, BIGINT, …) or "" for a calculated column
    hidden: bool = False
    is_key: bool = False
    summarize_by: str = "none"
    format: str | None = None
    folder: str | None = None
    sort_by: str | None = None
    expression: str | None = None  # DAX, for a calculated column


@dataclass(frozen=True)
class ModelTable:
    name: str
    kind: str
    description: str
    columns: tuple[ModelColumn, ...]
    measures: tuple[Metric, ...]
    is_date_table: bool = False

    def column(self, name: str) -> ModelColumn:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Relationship:
    from_table: str  # the many side
    from_column: str
    to_table: str  # the one side
    to_column: str
    active: bool = True

    @property
    def id(self) -> str:
        return stable_id("relationship", self.from_table, self.from_column, self.to_table, self.to_column)


@dataclass(frozen=True)
class SemanticModel:
    tables: tuple[ModelTable, ...]
    relationships: tuple[Relationship, ...]

    def table(self, name: str) -> ModelTable:
        return next(t for t in self.tables if t.name == name)


def model_tables() -> list[Table]:
    """The table specs in the model: every gold table (what `tunelake export gold` writes), then the extras."""
    return [*warehouse_tables(), *(TABLES[n] for n in EXTRA_TABLES)]


def _is_hidden(table: Table, col: Column) -> bool:
    if col.references or col.name in ("play_id", "run_id"):
        return True
    return table.kind in ("dim", "bridge") and col.name in table.primary_key and col.name.endswith(("_key", "_id"))


def _format(col: Column) -> str | None:
    if col.type == "DATE":
        return "yyyy-mm-dd"
    if col.type == "TIMESTAMP":
        return "yyyy-mm-dd hh:nn:ss"
    if col.type == "DOUBLE":
        return "0.0%" if col.name in ("completion", "share") else "#,0.00"
    if col.type in ("BIGINT", "INTEGER", "SMALLINT"):
        return "#,0" if col.name in ADDITIVE else "0"
    return None


def _folder(table: Table, col: Column, hidden: bool) -> str | None:
    if hidden:
        return None
    if col.type in ("TIMESTAMP", "DATE") or col.name in ("local_hour", "local_weekday"):
        return "Time" if table.name != DATE_TABLE else None
    if col.type == "BOOLEAN":
        return "Flags"
    return None


SORT_BY = {(DATE_TABLE, "day_name"): "iso_weekday"}  # plus the calculated month_name → month


def _column(table: Table, col: Column) -> ModelColumn:
    hidden = _is_hidden(table, col)
    return ModelColumn(
        col.name, DATA_TYPES[col.type], col.description, col.type, hidden=hidden,
        is_key=table.name == DATE_TABLE and col.name == DATE_COLUMN,
        summarize_by="sum" if col.name in ADDITIVE else "none", format=_format(col),
        folder=_folder(table, col, hidden), sort_by=SORT_BY.get((table.name, col.name)),
    )


def _calculated(table: Table) -> tuple[ModelColumn, ...]:
    """Columns the model adds: a month name for the calendar, a release decade for the eras."""
    if table.name == DATE_TABLE:
        cases = ", ".join(f'{i}, "{m}"' for i, m in enumerate(_MONTHS, 1))
        return (ModelColumn("month_name", "string", "Jan … Dec (sorted by month)", "", sort_by="month",
                            expression=f"SWITCH({DATE_TABLE}[month], {cases})"),)
    if table.name == "dim_track":
        return (ModelColumn("release_decade", "int64", "Decade of the release year, e.g. 1990", "", format="0",
                            expression="IF(NOT(ISBLANK(dim_track[release_year])), "
                                       "INT(dim_track[release_year] / 10) * 10)"),)
    return ()


def _candidates(specs: list[Table]) -> list[Relationship]:
    names = {t.name for t in specs}
    out = []
    for table in sorted(specs, key=lambda t: _KIND_ORDER[t.kind]):  # stable: spec order within a kind
        for col in table.columns:
            if col.references:
                to_table, to_column = col.references.split(".", 1)
                if to_table in names:
                    out.append(Relationship(table.name, col.name, to_table, to_column))
        if table.name in ("agg_user_track_month", "agg_user_artist_month"):  # months slice by the calendar
            out.append(Relationship(table.name, "month_start", DATE_TABLE, DATE_COLUMN))
    return out


def _reach(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def resolve_ambiguity(candidates: list[Relationship]) -> list[Relationship]:
    """Mark inactive every relationship that would open a second filter path between two tables."""
    edges: dict[str, set[str]] = {}  # filter direction: the one side → the many side
    out = []
    for rel in candidates:
        sources = {t for t in {*edges, rel.to_table} if rel.to_table in _reach(edges, t)}
        targets = _reach(edges, rel.from_table)
        ambiguous = any(t in _reach(edges, s) for s in sources for t in targets)
        if not ambiguous:
            edges.setdefault(rel.to_table, set()).add(rel.from_table)
        out.append(Relationship(rel.from_table, rel.from_column, rel.to_table, rel.to_column, not ambiguous))
    return out


def build_model() -> SemanticModel:
    """The whole semantic model: tables with their columns and measures, relationships with their activity."""
    specs = model_tables()
    tables = []
    for spec in specs:
        columns = tuple(_column(spec, c) for c in spec.columns) + _calculated(spec)
        measures = tuple(m for m in METRICS if m.dax is not None and m.table == spec.name)
        tables.append(ModelTable(spec.name, spec.kind, spec.description, columns, measures,
                                 is_date_table=spec.name == DATE_TABLE))
    return SemanticModel(tuple(tables), tuple(resolve_ambiguity(_candidates(specs))))


def mermaid(sm: SemanticModel) -> str:
    """The relationships as a Mermaid ER diagram (docs/powerbi.md shows it; a test keeps the two equal)."""
    lines = ["erDiagram"]
    for r in sm.relationships:
        line = "||--o{" if r.active else "||..o{"
        label = r.from_column if r.from_column == r.to_column else f"{r.from_column} = {r.to_column}"
        lines.append(f'    {r.to_table} {line} {r.from_table} : "{label}{"" if r.active else " (inactive)"}"')
    return "\n".join(lines)
