"""`tunelake sql` is read-only for real: one read statement, on a connection that can reach no file but the
warehouse and cannot change a setting. Every attempt below worked before (issue: COPY over CURRENT.json broke the
workspace)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunelake.cli import app
from tunelake.errors import TunelakeError


@pytest.fixture(scope="module")
def demo_ws(make_demo_ws) -> Path:
    return make_demo_ws("sql-sandbox", users=3, seed=4)


class Outcome:
    """What `tunelake sql` ends with: the exit code `main()` would give and the output or the error line."""

    def __init__(self, res) -> None:
        err = res.exception
        if isinstance(err, TunelakeError):
            self.exit_code, self.output = err.exit_code, err.one_line()
        else:
            assert err is None or isinstance(err, SystemExit), err
            self.exit_code, self.output = res.exit_code, res.output


def sql(ws: Path, query: str) -> Outcome:
    return Outcome(CliRunner().invoke(app, ["--workspace", str(ws), "sql", query, "--format", "json"]))


def test_a_select_answers(cfg):
    res = sql(cfg.root, "SELECT count(*) AS n FROM dim_user")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"n": 3}]


@pytest.mark.parametrize("query", [
    "WITH u AS (SELECT handle FROM dim_user) SELECT count(*) AS n FROM u",
    "FROM dim_user SELECT count(*) AS n",
    "DESCRIBE dim_user",
    "SHOW TABLES",
])
def test_other_read_forms_answer(cfg, query):
    res = sql(cfg.root, query)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)


def test_refused_before_reaching_the_warehouse(cfg, tmp_path):
    ws = cfg.root
    pointer = ws / "warehouse" / "CURRENT.json"
    before = pointer.read_bytes()
    other = tmp_path / "other.duckdb"
    attempts = {
        f"COPY dim_user TO '{pointer}' (FORMAT csv)": "COPY",
        f"COPY (SELECT 1) TO '{tmp_path / 'x.csv'}'": "COPY",
        f"EXPORT DATABASE '{tmp_path / 'dump'}'": "EXPORT",
        f"ATTACH '{other}' AS o (READ_WRITE)": "ATTACH",
        "INSERT INTO dim_user SELECT * FROM dim_user": "INSERT",
        "SET threads = 1": "SET",
        "PRAGMA database_list": "PRAGMA",
        "INSTALL httpfs": "",
        "CALL pragma_version()": "CALL",
        "SELECT 1; SELECT 2": "one SQL statement at a time, got 2",
        "SELECT 1; COPY dim_user TO '/tmp/y.csv'": "one SQL statement at a time",
        "EXPLAIN ANALYZE SELECT 1": "EXPLAIN",
    }
    for query, word in attempts.items():
        res = sql(ws, query)
        assert res.exit_code == 2, (query, res.output)
        assert "only read-only queries" in res.output or "one SQL statement" in res.output, query
        assert word in res.output, (query, res.output)
    assert pointer.read_bytes() == before
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "dump").exists() and not other.exists()


def test_a_select_cannot_read_files(cfg, tmp_path):
    secret = cfg.root / "secrets" / "tokens"
    secret.mkdir(parents=True, exist_ok=True)
    (secret / "someone.json").write_text('{"access_token": "x"}')
    for query in ["SELECT * FROM read_text('/etc/passwd')",
                  f"SELECT * FROM read_json_objects('{secret / 'someone.json'}')",
                  f"SELECT * FROM '{cfg.root / 'warehouse' / 'CURRENT.json'}'",
                  "SELECT * FROM glob('/etc/*')",
                  f"SELECT * FROM read_parquet('{cfg.root}/lake/curated/plays/*/*.parquet')"]:
        res = sql(cfg.root, query)
        assert res.exit_code != 0, (query, res.output)
        assert "file system operations are disabled" in res.output, (query, res.output)
        assert "access_token" not in res.output and "root:" not in res.output


def test_settings_cannot_change_inside_a_select(cfg):
    res = sql(cfg.root, "SELECT current_setting('enable_external_access') AS v")
    assert res.exit_code == 0 and json.loads(res.output) == [{"v": False}]
