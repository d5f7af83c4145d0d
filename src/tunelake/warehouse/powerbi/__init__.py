"""A generated Power BI Project (PBIP): `tunelake.pbip`, the semantic model in TMDL and the report in PBIR.

`export_powerbi_project` writes the whole project from the table specs and the metric registry; the source (gold
Parquet or Synapse) is a model parameter. Regenerating rewrites the two `definition/` folders and the project
files, and leaves Power BI Desktop's own `.pbi/` folders alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunelake.errors import ConfigError
from tunelake.warehouse.powerbi import pbir, tmdl
from tunelake.warehouse.powerbi.model import build_model, stable_id
from tunelake.warehouse.powerbi.source import Source, make_source

__all__ = ["Source", "export_powerbi_project", "make_source", "render_project"]

PBIP_SCHEMA = "https://developer.microsoft.com/json-schemas/fabric/pbip/pbipProperties/1.0.0/schema.json"
PBISM_SCHEMA = ("https://developer.microsoft.com/json-schemas/fabric/item/semanticModel/definitionProperties/1.0.0/"
                "schema.json")
PLATFORM_SCHEMA = "https://developer.microsoft.com/json-schemas/fabric/gitIntegration/platformProperties/2.0.0/schema.json"
GITIGNORE = "**/.pbi/localSettings.json\n**/.pbi/cache.abf\n"


def _json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _platform(kind: str, name: str) -> dict[str, Any]:
    return {"$schema": PLATFORM_SCHEMA, "metadata": {"type": kind, "displayName": name},
            "config": {"version": "2.0", "logicalId": stable_id("item", kind, name)}}


def render_project(source: Source, name: str = "tunelake") -> dict[str, str]:
    """Relative path → text of every file of the project."""
    model, report = f"{name}.SemanticModel", f"{name}.Report"
    files = {
        f"{name}.pbip": _json({"$schema": PBIP_SCHEMA, "version": "1.0",
                                "artifacts": [{"report": {"path": report}}],
                                "settings": {"enableAutoRecovery": True}}),
        ".gitignore": GITIGNORE,
        f"{model}/definition.pbism": _json({"$schema": PBISM_SCHEMA, "version": "4.2", "settings": {}}),
        f"{model}/.platform": _json(_platform("SemanticModel", name)),
        f"{report}/definition.pbir": _json({"$schema": pbir.PBIR_SCHEMA, "version": "4.0",
                                            "datasetReference": {"byPath": {"path": f"../{model}"}}}),
        f"{report}/.platform": _json(_platform("Report", name)),
    }
    files.update({f"{model}/definition/{p}": text for p, text in tmdl.render(build_model(), source).items()})
    files.update({f"{report}/{p}": _json(doc) for p, doc in pbir.render().items()})
    return files


def export_powerbi_project(out_dir: str | Path, source: Source | None = None, name: str = "tunelake") -> list[Path]:
    """Write the project into out_dir (created if needed); returns the files written, sorted.

    Files left in the two `definition/` folders by an earlier generation and not written now are removed, so a
    renamed page or table cannot linger."""
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} is a file, not a folder", hint="give --out a folder (it is created if needed)")
    files = render_project(source or make_source(), name)
    for folder in (f"{name}.SemanticModel/definition", f"{name}.Report/definition"):
        root = target / folder
        for old in sorted(root.rglob("*"), reverse=True) if root.exists() else []:
            rel = old.relative_to(target).as_posix()
            if old.is_file() and rel not in files:
                old.unlink()
            elif old.is_dir() and not any(old.iterdir()):
                old.rmdir()
    written = []
    for rel, text in sorted(files.items()):
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        tmp.replace(path)
        written.append(path)
    return written
