"""docs/warehouse.md, generated from the table specs so the documentation cannot drift from the schema.

Regenerate with `python -m tunelake.warehouse.docs` after changing `tables.py`; a test fails while the
committed file differs from what `render_warehouse_doc()` produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tunelake.warehouse.tables import TABLES, Table

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "warehouse.md"

KIND_TITLES = {
    "dim": "Dimensions",
    "bridge": "Bridges",
    "fact": "Facts",
    "agg": "Aggregates",
    "meta": "Run log and quality",
    "analytics": "Analytics",
}


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _ordered_kinds() -> list[str]:
    kinds = list(KIND_TITLES)
    kinds += sorted({t.kind for t in TABLES.values()} - set(kinds))
    return kinds


def _table_section(t: Table) -> list[str]:
    lines = [
        f"### `{t.name}`",
        "",
        t.description,
        "",
        f"- **Grain:** {t.grain}",
        f"- **Primary key:** {', '.join(f'`{c}`' for c in t.primary_key)}",
        f"- **Synapse distribution:** `{t.distribution}`",
    ]
    if t.partition_by:
        lines.append(f"- **Partitioned by:** {', '.join(f'`{c}`' for c in t.partition_by)}")
    lines += [
        "",
        "| Column | Type | Null | Description | References |",
        "|--------|------|------|-------------|------------|",
    ]
    for c in t.columns:
        key = " (PK)" if c.name in t.primary_key else ""
        ref = f"`{c.references}`" if c.references else ""
        null = "yes" if c.nullable else "no"
        lines.append(f"| `{c.name}`{key} | `{c.type}` | {null} | {_cell(c.description)} | {ref} |")
    lines.append("")
    return lines


def render_warehouse_doc() -> str:
    """The full text of docs/warehouse.md."""
    lines = [
        "# Warehouse",
        "",
        "<!-- Generated from src/tunelake/warehouse/tables.py by `python -m tunelake.warehouse.docs`; do "
        "not edit."
        " -->",
        "",
        "Every table is declared once in `src/tunelake/warehouse/tables.py`; the DuckDB and Spark DDL, "
        "the Synapse "
        "T-SQL (`tunelake export synapse`), the gold Parquet schema (`tunelake export gold`), the "
        "quality gates and "
        "this page are generated from those specs.",
        "",
        "Types are logical; per engine they are spelled as in `TYPES` (e.g. `VARCHAR` is `NVARCHAR(n)` in "
        "Synapse, `TIMESTAMP` is `DATETIME2(3)`). Timestamps are UTC unless the column says local. "
        "`References` are "
        "checked by the quality gates and never declared as foreign keys.",
        "",
        "## Tables",
        "",
        "| Table | Kind | Grain | Primary key | Synapse distribution |",
        "|-------|------|-------|-------------|----------------------|",
    ]
    kinds = _ordered_kinds()
    ordered = sorted(TABLES.values(), key=lambda t: kinds.index(t.kind))  # stable: spec order within a kind
    for t in ordered:
        pk = ", ".join(t.primary_key)
        link = f"[`{t.name}`](#{t.name})"
        lines.append(f"| {link} | {t.kind} | {_cell(t.grain)} | `{pk}` | `{t.distribution}` |")
    lines += ["", "## Relationships", "", "```mermaid", "erDiagram"]
    for t in ordered:
        for c in t.columns:
            if c.references:
                target, column = c.references.split(".", 1)
                lines.append(f'    {target} ||--o{{ {t.name} : "{c.name} = {column}"')
    lines += ["```", ""]
    for kind in kinds:
        group = [t for t in ordered if t.kind == kind]
        if not group:
            continue
        lines += [f"## {KIND_TITLES.get(kind, kind.title())}", ""]
        for t in group:
            lines += _table_section(t)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_warehouse_doc(path: str | Path | None = None) -> Path:
    """Write the generated document (default: docs/warehouse.md of the source tree); returns its path."""
    target = Path(path) if path else DOC_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_warehouse_doc(), encoding="utf-8")
    return target



if __name__ == "__main__":  # pragma: no cover - regenerates docs/warehouse.md
    write_warehouse_doc(sys.argv[1] if len(sys.argv) > 1 else None)
