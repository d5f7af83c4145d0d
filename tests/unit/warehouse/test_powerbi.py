"""The generated Power BI Project, checked without Power BI.

The semantic model is read back by a third-party TMDL parser (pbipinspect) and compared with the table specs and
the metric registry; every DAX and Power Query M expression is parsed by pbi_parsers; every JSON file validates
against the Microsoft schema it names (copies in tests/data/powerbi-schemas, see SOURCES.md); the default project
is compared with the committed example in docs/powerbi-example/ (the golden copy). Regenerate that copy after a
spec or registry change with `TUNELAKE_UPDATE_GOLDEN=1 pytest tests/unit/warehouse/test_powerbi.py`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tunelake.errors import ConfigError
from tunelake.warehouse.metrics import METRICS
from tunelake.warehouse.powerbi import export_powerbi_project, make_source, render_project
from tunelake.warehouse.powerbi.model import EXTRA_TABLES
from tunelake.warehouse.tables import TABLES, warehouse_tables

REPO = Path(__file__).resolve().parents[3]
SCHEMAS = REPO / "tests" / "data" / "powerbi-schemas"
EXAMPLE = REPO / "docs" / "powerbi-example"
SCHEMA_PREFIX = "https://developer.microsoft.com/json-schemas/"
JSON_SUFFIXES = {".json", ".pbip", ".pbir", ".pbism", ".platform"}
TMDL_TYPES = {"VARCHAR": "string", "BIGINT": "int64", "INTEGER": "int64", "SMALLINT": "int64", "DOUBLE": "double",
              "BOOLEAN": "boolean", "TIMESTAMP": "dateTime", "DATE": "dateTime"}
DAX_MEASURES = {m.name: m for m in METRICS if m.dax is not None}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pbip")
    export_powerbi_project(out)
    return out


@pytest.fixture(scope="module")
def parsed(project: Path, requires: Any) -> Any:
    inspect = requires("pbipinspect.inspect", "the third-party TMDL parser")
    return inspect.create_inspect(project).pbip


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1].replace("''", "'") if name.startswith("'") and name.endswith("'") else name


def _tables(parsed: Any) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in parsed.tables}


# --- the semantic model, read back by pbipinspect ---------------------------------------------------------------

def test_every_gold_table_and_column_with_its_type(parsed: Any) -> None:
    tables = _tables(parsed)
    expected = [t.name for t in warehouse_tables()] + list(EXTRA_TABLES)
    assert sorted(tables) == sorted(expected)
    for name in expected:
        spec = TABLES[name]
        got = {c["name"]: c for c in tables[name]["columns"] if not c["expression"]}  # not the calculated ones
        assert list(got) == spec.column_names, name
        for col in spec.columns:
            assert got[col.name]["dataType"] == TMDL_TYPES[col.type], f"{name}.{col.name}"
            assert got[col.name]["sourceColumn"] == col.name
        assert len(tables[name]["partitions"]) == 1


def test_column_descriptions_are_the_specs(project: Path) -> None:
    folder = project / "tunelake.SemanticModel" / "definition" / "tables"
    for name in [t.name for t in warehouse_tables()] + list(EXTRA_TABLES):
        text = (folder / f"{name}.tmdl").read_text()
        assert text.startswith(f"/// {TABLES[name].description}\ntable {name}\n"), name
        for col in TABLES[name].columns:
            assert f"\t/// {col.description}\n\tcolumn {col.name}\n" in text, f"{name}.{col.name}"
        for m in (m for m in DAX_MEASURES.values() if m.table == name):
            assert f"\t/// {m.description}\n\tmeasure '{m.name}' =" in text or (
                f"\t/// {m.description}\n\tmeasure {m.name} =" in text), m.name


def test_keys_hidden_and_the_calendar_is_the_date_table(parsed: Any, project: Path) -> None:
    tables = _tables(parsed)
    for name, table in tables.items():
        cols = {c["name"]: c for c in table["columns"]}
        for col in TABLES[name].columns:
            if col.references:  # every foreign key
                assert cols[col.name]["isHidden"], f"{name}.{col.name}"
    for dim, key in [("dim_user", "user_key"), ("dim_track", "track_id"), ("dim_artist", "artist_id"),
                     ("dim_album", "album_id"), ("dim_date", "date_key")]:
        assert next(c for c in tables[dim]["columns"] if c["name"] == key)["isHidden"], dim
    assert not next(c for c in tables["dim_artist"]["columns"] if c["name"] == "artist_name")["isHidden"]
    fact = {c["name"]: c for c in tables["fact_play"]["columns"]}
    assert not fact["ms_played"]["isHidden"] and not fact["platform"]["isHidden"]
    assert fact["ms_played"]["summarizeBy"] == "sum" and fact["local_hour"]["summarizeBy"] == "none"
    text = (project / "tunelake.SemanticModel" / "definition" / "tables" / "dim_date.tmdl").read_text()
    assert "\tdataCategory: Time\n" in text.split("\tcolumn ")[0]  # a table property, before any column
    date_block = text.split("\tcolumn date\n")[1].split("\n\n")[0]
    assert "\t\tisKey\n" in date_block and "dataType: dateTime" in date_block


def test_sort_by_columns_for_day_and_month_names(project: Path, parsed: Any) -> None:
    text = (project / "tunelake.SemanticModel" / "definition" / "tables" / "dim_date.tmdl").read_text()
    assert re.search(r"\tcolumn day_name\n(\t\t.*\n)*\t\tsortByColumn: iso_weekday\n", text)
    assert re.search(r"\tcolumn month_name = SWITCH.*\n(\t\t.*\n)*\t\tsortByColumn: month\n", text)
    month = next(c for c in _tables(parsed)["dim_date"]["columns"] if c["name"] == "month_name")
    assert month["dataType"] == "string" and month["calculated"]


def test_relationships_follow_the_references(parsed: Any) -> None:
    names = {t.name for t in warehouse_tables()} | set(EXTRA_TABLES)
    expected = {(t, c.name, *c.references.split(".")) for t in names for c in TABLES[t].columns
                if c.references and c.references.split(".")[0] in names}
    expected |= {("agg_user_track_month", "month_start", "dim_date", "date"),
                 ("agg_user_artist_month", "month_start", "dim_date", "date")}
    got = {(r["fromTable"], r["fromColumn"], r["toTable"], r["toColumn"]): r for r in parsed.relationships}
    assert set(got) == expected
    for rel in got.values():  # many-to-one, single direction (pbipinspect reads the TMDL defaults as such)
        assert (rel["crossFilteringBehavior"], rel["fromCardinalitySymbol"], rel["toCardinalitySymbol"]) == (
            "singleDirection", "*", "1")
    inactive = {k for k, r in got.items() if str(r["isActive"]).lower() == "false"}
    # The snowflake links between dimensions would open a second path from dim_artist/dim_album to fact_play
    # (the facts already carry artist_id and album_id): kept, but inactive.
    assert inactive == {("dim_track", "artist_id", "dim_artist", "artist_id"),
                        ("dim_track", "album_id", "dim_album", "album_id"),
                        ("dim_album", "artist_id", "dim_artist", "artist_id")}


def test_pbipinspect_expectations_pass(parsed: Any, project: Path, requires: Any) -> None:
    ex = requires("pbipinspect.expectations")
    inspect = requires("pbipinspect.inspect")
    checks = [ex.expect_cols_in_relationship_has_same_type(state="Error"), ex.expect_table_name_no_spaces("Error"),
              ex.expect_no_calculated_tables(state="Error")]
    assert [m for check in checks for m in check(parsed)] == []
    # The same check fails on a model whose key types disagree, so the pass above means something.
    path = project / "tunelake.SemanticModel" / "definition" / "tables" / "dim_user.tmdl"
    original = path.read_text()
    try:
        path.write_text(original.replace("column user_key\n\t\tdataType: int64",
                                         "column user_key\n\t\tdataType: string"))
        broken = inspect.create_inspect(project).pbip
        assert ex.expect_cols_in_relationship_has_same_type(state="Error")(broken)
    finally:
        path.write_text(original)


def test_a_measure_for_every_registry_metric(parsed: Any) -> None:
    got = {_unquote(m["name"]): m for m in parsed.measures}
    assert set(got) == set(DAX_MEASURES)
    for name, m in got.items():
        spec = DAX_MEASURES[name]
        assert m["table"] == spec.table, name
        assert m["formatString"] == spec.format, name
        assert m["displayFolder"] == spec.folder, name
        assert " ".join(m["expression"].split()) == " ".join(spec.dax.split()), name


def test_measure_references_exist(parsed: Any) -> None:
    tables = _tables(parsed)
    columns = {(t, c["name"]) for t, tab in tables.items() for c in tab["columns"]}
    for m in parsed.measures:
        for ref in m["references"]:
            if ref["type"] == "measure":
                assert ref["name"].startswith("@") or ref["name"] in DAX_MEASURES, (m["name"], ref)
            else:
                assert (ref["name"], ref["column"]) in columns, (m["name"], ref)


def test_dax_and_m_parse(parsed: Any, requires: Any) -> None:
    dax = requires("pbi_parsers.dax", "the third-party DAX/M parser")
    pq = requires("pbi_parsers.pq")
    expressions = [m["expression"] for m in parsed.measures]
    expressions += [c["expression"] for t in parsed.tables for c in t["columns"] if c["expression"]]
    assert len(expressions) == len(DAX_MEASURES) + 2
    for e in expressions:
        assert dax.to_ast(e) is not None, e
    for broken in ("CALCULATE(COUNTROWS(fact_play)", "DIVIDE([Plays] [Skips])"):  # the parser does reject
        with pytest.raises((AssertionError, ValueError)):
            assert dax.to_ast(broken) is not None
    # Every partition is the same template with the table's name and column types filled in; pbi_parsers takes
    # about a second per query, so it parses the largest (fact_play) here and in the ADLS and Synapse tests.
    for t in parsed.tables:
        (part,) = t["partitions"]
        assert part["mode"] == "import" and f'GoldLocation & "\\{t["name"]}")' in part["expression"], t["name"]
        types = re.findall(r'\{"(\w+)", [\w. ]+\}', part["expression"])
        assert types == TABLES[t["name"]].column_names, t["name"]
    fact = next(t for t in parsed.tables if t["name"] == "fact_play")["partitions"][0]["expression"]
    assert pq.to_ast(fact) is not None
    with pytest.raises((AssertionError, ValueError)):
        pq.to_ast(fact.replace("in\n", "", 1))  # the parser does reject a let without its in


# --- sources ----------------------------------------------------------------------------------------------------

def _partition(files: dict[str, str], table: str) -> str:
    return files[f"tunelake.SemanticModel/definition/tables/{table}.tmdl"].split("\tpartition ")[1]


def test_parquet_source_local_and_adls(requires: Any) -> None:
    local = render_project(make_source("parquet", r"D:\data\gold"))
    assert 'Folder.Files(GoldLocation & "\\fact_play")' in _partition(local, "fact_play")
    assert 'expression GoldLocation = "D:\\data\\gold"' in local["tunelake.SemanticModel/definition/expressions.tmdl"]
    adls = render_project(make_source("parquet", "abfss://gold@acct.dfs.core.windows.net/tunelake/"))
    part = _partition(adls, "dim_track")
    assert 'AzureStorage.DataLake(GoldLocation & "/dim_track"' in part
    assert '{"popularity", Int64.Type}' in part and '{"release_date", type date}' in part
    fact = _partition(adls, "fact_play").split("source =\n")[1].split("\n\n")[0].replace("\t", "")
    assert requires("pbi_parsers.pq").to_ast(fact) is not None
    assert '"https://acct.dfs.core.windows.net/gold/tunelake"' in adls[
        "tunelake.SemanticModel/definition/expressions.tmdl"]


def test_synapse_source(requires: Any) -> None:
    pq = requires("pbi_parsers.pq")
    files = render_project(make_source("synapse", "ws.sql.azuresynapse.net", database="pool", schema="gold"))
    part = _partition(files, "fact_play")
    assert "mode: directQuery" in part
    assert "Sql.Database(SynapseServer, SynapseDatabase)" in part
    assert 'Source{[Schema = "gold", Item = "fact_play"]}[Data]' in part
    assert pq.to_ast(part.split("source =\n")[1].split("\n\n")[0].replace("\t", "")) is not None
    expressions = files["tunelake.SemanticModel/definition/expressions.tmdl"]
    assert 'expression SynapseServer = "ws.sql.azuresynapse.net"' in expressions
    assert 'expression SynapseDatabase = "pool"' in expressions
    imported = render_project(make_source("synapse", "ws.sql.azuresynapse.net", database="pool", mode="Import"))
    assert "mode: import" in _partition(imported, "dim_user")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"kind": "csv"}, "parquet, synapse"),
    ({"kind": "parquet", "location": "az://gold/path"}, "cannot read the gold folder"),
    ({"kind": "parquet", "location": "https://acct.blob.core.windows.net/c/gold"}, "cannot read"),
    ({"kind": "parquet", "mode": "DirectQuery"}, "only be imported"),
    ({"kind": "synapse", "mode": "Live"}, "DirectQuery or Import"),
    ({"kind": "synapse", "schema": "gold; DROP"}, "not a plain T-SQL identifier"),
])
def test_bad_source_options(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_source(**kwargs)


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        export_powerbi_project(tmp_path / "file")


# --- the report -------------------------------------------------------------------------------------------------

def _json_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and (p.suffix in JSON_SUFFIXES or p.name == ".platform"))


def test_json_files_validate_against_microsofts_schemas(project: Path, requires: Any) -> None:
    jsonschema = requires("jsonschema")
    referencing = requires("referencing")
    registry = referencing.Registry().with_resources(
        (SCHEMA_PREFIX + p.relative_to(SCHEMAS).as_posix(),
         referencing.Resource.from_contents(json.loads(p.read_text()))) for p in SCHEMAS.rglob("*.json"))
    files = _json_files(project)
    assert len(files) > 40
    for path in files:
        doc = json.loads(path.read_text())
        schema = registry.contents(doc["$schema"])  # a KeyError here: a schema we have no copy of
        errors = list(jsonschema.Draft7Validator(schema, registry=registry).iter_errors(doc))
        assert not errors, f"{path.relative_to(project)}: {errors[0].message}"
    # The validator does reject: a projection without its queryRef, a width that is not a number.
    visual = json.loads(next(project.rglob("visual.json")).read_text())
    next(iter(visual["visual"]["query"]["queryState"].values()))["projections"][0].pop("queryRef")
    visual["position"]["width"] = "wide"
    validator = jsonschema.Draft7Validator(registry.contents(visual["$schema"]), registry=registry)
    errors = list(validator.iter_errors(visual))
    assert {tuple(e.absolute_path)[-1] for e in errors} >= {"width", 0}


def _fields(node: Any, aliases: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(Measure|Column, entity, property) of every field expression in a visual, query aliases resolved."""
    aliases = dict(aliases or {})
    out = []
    if isinstance(node, dict):
        aliases.update({f["Name"]: f["Entity"] for f in node.get("From", []) if "Entity" in f})
        for kind in ("Measure", "Column"):
            if kind in node and "Property" in node[kind]:
                ref = node[kind]["Expression"]["SourceRef"]
                out.append((kind, ref["Entity"] if "Entity" in ref else aliases[ref["Source"]], node[kind]["Property"]))
        for v in node.values():
            out += _fields(v, aliases)
    elif isinstance(node, list):
        for v in node:
            out += _fields(v, aliases)
    return out


def test_top_lists_keep_ten_by_their_measure(project: Path) -> None:
    tops = {}
    for path in (project / "tunelake.Report" / "definition").rglob("visual.json"):
        doc = json.loads(path.read_text())
        for f in doc.get("filterConfig", {}).get("filters", []):
            query = f["filter"]["From"][0]["Expression"]["Subquery"]["Query"]
            sort = doc["visual"]["query"]["sortDefinition"]["sort"][0]["field"]["Measure"]["Property"]
            assert query["OrderBy"][0]["Expression"]["Measure"]["Property"] == sort
            assert query["OrderBy"][0]["Direction"] == 2  # descending
            tops[f["field"]["Column"]["Property"]] = query["Top"]
    assert tops == {"artist_name": 10, "track_name": 10, "primary_genre": 10, "album_name": 10}


def test_six_pages_like_the_dashboard_bound_to_the_model(project: Path, parsed: Any) -> None:
    report = project / "tunelake.Report" / "definition"
    pages = json.loads((report / "pages" / "pages.json").read_text())["pageOrder"]
    names = [json.loads((report / "pages" / p / "page.json").read_text())["displayName"] for p in pages]
    assert names == ["Overview", "Listening patterns", "Taste", "Segments", "Recommendations", "Data quality"]
    tables = _tables(parsed)
    columns = {(t, c["name"]) for t, tab in tables.items() for c in tab["columns"]}
    measures = {(m["table"], _unquote(m["name"])) for m in parsed.measures}
    used = set()
    for visual in report.rglob("visual.json"):
        fields = _fields(json.loads(visual.read_text()))
        assert fields, visual
        for kind, entity, prop in fields:
            assert (entity, prop) in (measures if kind == "Measure" else columns), (visual, kind, entity, prop)
            if kind == "Measure":
                used.add(prop)
    for page, measure in [("Overview", "Plays"), ("Overview", "Hours"), ("Listening patterns", "Sessions"),
                          ("Taste", "Artist discovery rate"), ("Taste", "Era share of plays")]:
        assert measure in used, (page, measure)


def test_cli_writes_the_project(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tunelake.cli import app

    out = tmp_path / "pbi"
    res = CliRunner().invoke(app, ["export", "powerbi", "--out", str(out), "--source", "synapse", "--location",
                                   "ws.sql.azuresynapse.net", "--database", "pool"])
    assert res.exit_code == 0, res.output
    assert "directQuery" in res.output
    assert json.loads((out / "tunelake.pbip").read_text())["artifacts"] == [{"report": {"path": "tunelake.Report"}}]
    (out / "tunelake.Report" / "definition" / "pages" / "old_page").mkdir()
    (out / "tunelake.Report" / "definition" / "pages" / "old_page" / "page.json").write_text("{}")
    (out / "tunelake.SemanticModel" / ".pbi").mkdir()
    (out / "tunelake.SemanticModel" / ".pbi" / "localSettings.json").write_text("{}")
    bad = subprocess.run([sys.executable, "-m", "tunelake.cli", "export", "powerbi", "--out", str(out), "--location",
                          "az://nope"], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert bad.returncode == 3  # a configuration error: one line on stderr, no traceback
    assert bad.stderr.strip().startswith("error: Power BI cannot read the gold folder at 'az://nope'")
    assert len(bad.stderr.strip().splitlines()) == 1
    res = CliRunner().invoke(app, ["export", "powerbi", "--out", str(out)])
    assert res.exit_code == 0 and "Placeholders" in res.output
    assert not (out / "tunelake.Report" / "definition" / "pages" / "old_page").exists()  # stale page removed
    assert (out / "tunelake.SemanticModel" / ".pbi" / "localSettings.json").exists()  # Desktop's own files kept


# --- golden copy --------------------------------------------------------------------------------------------------

def test_default_project_matches_the_committed_example(tmp_path: Path) -> None:
    files = render_project(make_source())
    if os.environ.get("TUNELAKE_UPDATE_GOLDEN") == "1":
        export_powerbi_project(EXAMPLE)
    committed = {p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*") if p.is_file()
                 and not p.relative_to(EXAMPLE).as_posix().startswith(("gold/", "README.md"))}
    assert committed == set(files)
    for rel, text in files.items():
        assert (EXAMPLE / rel).read_text(encoding="utf-8") == text, f"{rel} differs from docs/powerbi-example"


def test_docs_show_the_model() -> None:
    from tunelake.warehouse.powerbi.model import build_model, mermaid

    text = (REPO / "docs" / "powerbi.md").read_text()
    assert f"```mermaid\n{mermaid(build_model())}\n```" in text
    for m in METRICS:
        assert f"| {m.name} |" in text, m.name
