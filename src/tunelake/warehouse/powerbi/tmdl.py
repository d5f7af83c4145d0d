"""Spell the semantic model in TMDL, the text format of a Power BI Project's `definition/` folder.

TMDL is indentation-based (tabs): an object line (`table x`, `column y`, `measure 'Z' = …`), its properties one tab
deeper, a multi-line expression one tab deeper still, and `///` lines before an object for its description.
Names that are not plain identifiers are single-quoted. See docs/powerbi.md for what is checked without Power BI.
"""

from __future__ import annotations

import re

from tunelake.warehouse.metrics import Metric
from tunelake.warehouse.powerbi.model import ModelColumn, ModelTable, Relationship, SemanticModel, stable_id
from tunelake.warehouse.powerbi.source import Source

COMPATIBILITY_LEVEL = 1600
T = "\t"


def quote(name: str) -> str:
    """A TMDL object name: bare when it is a plain identifier, else in single quotes (quotes doubled)."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else "'" + name.replace("'", "''") + "'"


def _doc(text: str, depth: int) -> list[str]:
    return [f"{T * depth}/// {line}".rstrip() for line in text.splitlines()]


def _expression(head: str, expr: str, depth: int) -> list[str]:
    """`head = expr` on one line, or `head =` with the expression two levels deeper when it has several lines."""
    lines = expr.splitlines()
    if len(lines) == 1:
        return [f"{T * depth}{head} = {expr}"]
    return [f"{T * depth}{head} =", *(f"{T * (depth + 2)}{line}" for line in lines)]


def database() -> str:
    return f"database\n{T}compatibilityLevel: {COMPATIBILITY_LEVEL}\n"


def model(sm: SemanticModel, source: Source) -> str:
    order = ", ".join(f'"{n}"' for n in [*source.parameters, *(t.name for t in sm.tables)])
    lines = [
        "model Model", f"{T}culture: en-US", f"{T}defaultPowerBIDataSourceVersion: powerBI_V3",
        f"{T}sourceQueryCulture: en-US", f"{T}dataAccessOptions", f"{T * 2}legacyRedirects",
        f"{T * 2}returnErrorValuesAsNull", "", f"annotation PBI_QueryOrder = [{order}]", "",
        "annotation __PBI_TimeIntelligenceEnabled = 0", "",
        *(f"ref table {quote(t.name)}" for t in sm.tables), "",
    ]
    return "\n".join(lines)


def _column(table: str, col: ModelColumn) -> list[str]:
    head = f"column {quote(col.name)}"
    lines = _doc(col.description, 1)
    lines += _expression(head, col.expression, 1) if col.expression else [f"{T}{head}"]
    props = [f"dataType: {col.data_type}"]
    if col.is_key:
        props.append("isKey")
    if col.hidden:
        props.append("isHidden")
    if col.format:
        props.append(f"formatString: {col.format}")
    if col.folder:
        props.append(f"displayFolder: {col.folder}")
    props.append(f"lineageTag: {stable_id('column', table, col.name)}")
    props.append(f"summarizeBy: {col.summarize_by}")
    if not col.expression:
        props.append(f"sourceColumn: {col.name}")
    if col.sort_by:
        props.append(f"sortByColumn: {quote(col.sort_by)}")
    lines += [f"{T * 2}{p}" for p in props]
    return [*lines, ""]


def _measure(table: str, m: Metric) -> list[str]:
    assert m.dax is not None
    lines = _doc(m.description, 1) + _expression(f"measure {quote(m.name)}", m.dax, 1)
    lines += [f"{T * 2}formatString: {m.format}", f"{T * 2}displayFolder: {m.folder}",
              f"{T * 2}lineageTag: {stable_id('measure', table, m.name)}"]
    return [*lines, ""]


def table(t: ModelTable, source: Source) -> str:
    lines = [*_doc(t.description, 0), f"table {quote(t.name)}"]
    if t.is_date_table:
        lines.append(f"{T}dataCategory: Time")
    lines += [f"{T}lineageTag: {stable_id('table', t.name)}", ""]
    for col in t.columns:
        lines += _column(t.name, col)
    for m in t.measures:
        lines += _measure(t.name, m)
    lines += [f"{T}partition {quote(t.name)} = m", f"{T * 2}mode: {source.mode}", f"{T * 2}source ="]
    lines += [f"{T * 4}{line}" for line in source.partition(t.name).splitlines()]
    lines += ["", f"{T}annotation PBI_ResultType = Table", ""]
    return "\n".join(lines)


def relationships(rels: tuple[Relationship, ...]) -> str:
    lines = []
    for r in rels:
        lines.append(f"relationship {r.id}")
        if not r.active:
            lines.append(f"{T}isActive: false")
        lines += [f"{T}fromColumn: {quote(r.from_table)}.{quote(r.from_column)}",
                  f"{T}toColumn: {quote(r.to_table)}.{quote(r.to_column)}", ""]
    return "\n".join(lines)


def expressions(source: Source) -> str:
    lines = []
    for name, (value, description) in source.parameters.items():
        lines += _doc(description, 0)
        lines.append(f'expression {quote(name)} = "{value.replace(chr(34), chr(34) * 2)}" meta '
                     '[IsParameterQuery=true, Type="Text", IsParameterQueryRequired=true]')
        lines += [f"{T}lineageTag: {stable_id('expression', name)}", "",
                  f"{T}annotation PBI_ResultType = Text", ""]
    return "\n".join(lines)


def render(sm: SemanticModel, source: Source) -> dict[str, str]:
    """Path under `<name>.SemanticModel/definition/` → TMDL text."""
    files = {"database.tmdl": database(), "model.tmdl": model(sm, source),
             "relationships.tmdl": relationships(sm.relationships), "expressions.tmdl": expressions(source)}
    files.update({f"tables/{t.name}.tmdl": table(t, source) for t in sm.tables})
    return files
