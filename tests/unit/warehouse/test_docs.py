"""docs/warehouse.md is generated from the specs and committed; it must not drift."""

from __future__ import annotations

from pathlib import Path

from tunelake.warehouse.docs import DOC_PATH, render_warehouse_doc, write_warehouse_doc
from tunelake.warehouse.tables import TABLES

REPO_DOC = Path(__file__).resolve().parents[3] / "docs" / "warehouse.md"


def test_committed_doc_matches_specs() -> None:
    assert DOC_PATH == REPO_DOC
    assert REPO_DOC.read_text(encoding="utf-8") == render_warehouse_doc(), (
        "docs/warehouse.md is stale: run `python -m tunelake.warehouse.docs` and commit it"
    )


def test_every_table_and_column_documented() -> None:
    text = render_warehouse_doc()
    for t in TABLES.values():
        assert f"### `{t.name}`" in text
        section = text.split(f"### `{t.name}`", 1)[1].split("\n### ", 1)[0]
        assert t.grain in section
        assert f"**Primary key:** {', '.join(f'`{c}`' for c in t.primary_key)}" in section
        assert f"`{t.distribution}`" in section
        for c in t.columns:
            row = next(line for line in section.splitlines() if line.startswith(f"| `{c.name}`"))
            assert f"`{c.type}`" in row
            assert ("| yes |" if c.nullable else "| no |") in row
            if c.references:
                assert f"`{c.references}`" in row


def test_write_doc(tmp_path: Path) -> None:
    path = write_warehouse_doc(tmp_path / "docs" / "warehouse.md")
    assert path.read_text(encoding="utf-8") == render_warehouse_doc()
