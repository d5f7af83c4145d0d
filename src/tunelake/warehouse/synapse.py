"""Azure Synapse T-SQL generated from the table specs.

`export_synapse` writes, for a dedicated SQL pool, the schema, the tables (`DISTRIBUTION = HASH(user_key)` for
facts and aggregates, `REPLICATE` for dimensions, `CLUSTERED COLUMNSTORE INDEX`, primary keys
`NONCLUSTERED … NOT ENFORCED`, never a foreign key), `COPY INTO` scripts that load the gold Parquet written by
`tunelake export gold`, the aggregate tables as CTAS over `fact_play`, and serverless SQL views (`OPENROWSET`)
over the same Parquet; plus a README with the order to run them.

The DDL is rendered from Jinja templates rather than transpiled: sqlglot cannot parse CLUSTERED COLUMNSTORE or
NOT ENFORCED and drops DISTRIBUTION from CTAS. The aggregate SELECTs are hand-written T-SQL (one template per
aggregate, `templates/synapse/<table>.sql.j2`) computing what the DuckDB models compute; the outer SELECT that
casts each column to its spec type (and keeps NOT NULL columns NOT NULL) is generated from the spec.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2

from tunelake.errors import ConfigError
from tunelake.warehouse.tables import TABLES, Table, warehouse_tables

TEMPLATE_DIR = Path(__file__).parent / "templates" / "synapse"
PLACEHOLDER_STORAGE_URL = "https://<ACCOUNT>.blob.core.windows.net/<CONTAINER>/<PATH>"
DEFAULT_SCHEMA = "tunelake"
CREDENTIALS = ("managed_identity", "sas")

# T-SQL reserved keywords (SQL Server / Synapse); a column with one of these names is bracket-quoted.
RESERVED = frozenset(
    [
        "ADD", "ALL", "ALTER", "AND", "ANY", "AS", "ASC", "AUTHORIZATION", "BACKUP", "BEGIN", "BETWEEN",
        "BREAK", "BROWSE", "BULK", "BY", "CASCADE", "CASE", "CHECK", "CHECKPOINT", "CLOSE", "CLUSTERED",
        "COALESCE", "COLLATE", "COLUMN", "COMMIT", "COMPUTE", "CONSTRAINT", "CONTAINS", "CONTAINSTABLE",
        "CONTINUE", "CONVERT", "CREATE", "CROSS", "CURRENT", "CURRENT_DATE", "CURRENT_TIME",
        "CURRENT_TIMESTAMP", "CURRENT_USER", "CURSOR", "DATABASE", "DBCC", "DEALLOCATE", "DECLARE", "DEFAULT",
        "DELETE", "DENY", "DESC", "DISK", "DISTINCT", "DISTRIBUTED", "DOUBLE", "DROP", "DUMP", "ELSE", "END",
        "ERRLVL", "ESCAPE", "EXCEPT", "EXEC", "EXECUTE", "EXISTS", "EXIT", "EXTERNAL", "FETCH", "FILE",
        "FILLFACTOR", "FOR", "FOREIGN", "FREETEXT", "FREETEXTTABLE", "FROM", "FULL", "FUNCTION", "GOTO",
        "GRANT", "GROUP", "HAVING", "HOLDLOCK", "IDENTITY", "IDENTITY_INSERT", "IDENTITYCOL", "IF", "IN",
        "INDEX", "INNER", "INSERT", "INTERSECT", "INTO", "IS", "JOIN", "KEY", "KILL", "LABEL", "LEFT", "LIKE",
        "LINENO", "LOAD", "MERGE", "NATIONAL", "NOCHECK", "NONCLUSTERED", "NOT", "NULL", "NULLIF", "OF",
        "OFF", "OFFSETS", "ON", "OPEN", "OPENDATASOURCE", "OPENQUERY", "OPENROWSET", "OPENXML", "OPTION",
        "OR", "ORDER", "OUTER", "OVER", "PERCENT", "PIVOT", "PLAN", "PRECISION", "PRIMARY", "PRINT", "PROC",
        "PROCEDURE", "PUBLIC", "RAISERROR", "READ", "READTEXT", "RECONFIGURE", "REFERENCES", "REPLICATION",
        "RESTORE", "RESTRICT", "RETURN", "REVERT", "REVOKE", "RIGHT", "ROLLBACK", "ROWCOUNT", "ROWGUIDCOL",
        "RULE", "SAVE", "SCHEMA", "SECURITYAUDIT", "SELECT", "SESSION_USER", "SET", "SETUSER", "SHUTDOWN",
        "SOME", "STATISTICS", "SYSTEM_USER", "TABLE", "TABLESAMPLE", "TEXTSIZE", "THEN", "TO", "TOP", "TRAN",
        "TRANSACTION", "TRIGGER", "TRUNCATE", "TRY_CONVERT", "TSEQUAL", "UNION", "UNIQUE", "UNPIVOT",
        "UPDATE", "UPDATETEXT", "USE", "USER", "VALUES", "VARYING", "VIEW", "WAITFOR", "WHEN", "WHERE",
        "WHILE", "WITH", "WRITETEXT",
    ]
)


def quote_ident(name: str) -> str:
    """A column name as T-SQL needs it: bracket-quoted only when it is a reserved keyword."""
    return f"[{name}]" if name.upper() in RESERVED else name

SCRIPTS = (
    ("00_schema.sql", "Create the schema (dedicated SQL pool)."),
    ("10_tables.sql", "Create the dimension, bridge and fact tables (dedicated SQL pool)."),
    ("20_copy_into.sql", "Load the gold Parquet into those tables with COPY INTO (dedicated SQL pool)."),
    ("30_aggregates_ctas.sql", "Rebuild the aggregate tables from fact_play with CTAS (dedicated SQL pool)."),
    ("40_serverless_views.sql", "Optional: views over the same Parquet in a serverless SQL pool database."),
)

# Value that replaces a NULL the source can never produce, so CTAS types a NOT NULL spec column as NOT NULL.
_NOT_NULL_FILLER = {
    "VARCHAR": "N''",
    "BIGINT": "0",
    "INTEGER": "0",
    "SMALLINT": "0",
    "DOUBLE": "0",
    "BOOLEAN": "0",
    "TIMESTAMP": "CAST('1900-01-01' AS DATETIME2(3))",
    "DATE": "CAST('1900-01-01' AS DATE)",
}


@dataclass(frozen=True)
class SynapseTable:
    """One table as the templates see it."""

    spec: Table
    schema: str
    ctas_select: str | None = None  # T-SQL SELECT for aggregates built by CTAS

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.spec.name}"

    @property
    def distribution(self) -> str:
        return self.spec.distribution

    @property
    def pk_name(self) -> str:
        return f"pk_{self.spec.name}"

    @property
    def pk_columns(self) -> str:
        return ", ".join(quote_ident(c) for c in self.spec.primary_key)

    def columns(self) -> list[tuple[str, str, bool]]:
        """(quoted name, T-SQL type, nullable) per column, in spec order."""
        return [(quote_ident(c.name), c.sql_type("tsql"), c.nullable) for c in self.spec.columns]


def _check_distribution(table: Table) -> None:
    if table.distribution in ("REPLICATE", "ROUND_ROBIN"):
        return
    match = re.fullmatch(r"HASH\((\w+)\)", table.distribution)
    if not match or match.group(1) not in table.column_names:
        raise ConfigError(f"table {table.name}: unsupported Synapse distribution {table.distribution!r}")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # SQL and Markdown, never HTML
    )


def _ctas_select(env: jinja2.Environment, spec: Table, schema: str) -> str:
    """The full CTAS SELECT: spec-typed outer projection over the hand-written aggregate query."""
    inner = env.get_template(f"{spec.name}.sql.j2").render(schema=schema).strip().rstrip(";")
    inner = "\n".join("    " + line if line else line for line in inner.splitlines())
    projections = []
    for col in spec.columns:
        name = quote_ident(col.name)
        expr = f"CAST(q.{name} AS {col.sql_type('tsql')})"
        if not col.nullable:
            expr = f"ISNULL({expr}, {_NOT_NULL_FILLER[col.type]})"
        projections.append(f"    {expr} AS {name}")
    return "SELECT\n" + ",\n".join(projections) + "\nFROM (\n" + inner + "\n) AS q"


def _resolve_tables(tables: Iterable[str] | None) -> list[Table]:
    if tables is None:
        return warehouse_tables()
    out = []
    for name in tables:
        if name not in TABLES:
            raise ConfigError(f"unknown warehouse table {name!r}", hint=f"one of {', '.join(TABLES)}")
        out.append(TABLES[name])
    return out


def _check_storage_url(storage_url: str | None) -> str:
    if storage_url is None:
        return PLACEHOLDER_STORAGE_URL
    url = storage_url.rstrip("/")
    if not re.match(r"^(https://[^/]+\.(blob|dfs)\.core\.windows\.net|abfss://[^/]+)/\S+$", url):
        raise ConfigError(
            f"storage URL {storage_url!r} is not a Blob/ADLS URL Synapse can read",
            hint="use https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH "
            "(the folder `tunelake export gold` wrote)",
        )
    return url


def render_synapse(
    storage_url: str | None = None,
    tables: Iterable[str] | None = None,
    *,
    schema: str = DEFAULT_SCHEMA,
    credential: str = "managed_identity",
) -> dict[str, str]:
    """File name → text of every Synapse script and the README."""
    if credential not in CREDENTIALS:
        raise ConfigError(f"credential must be one of {', '.join(CREDENTIALS)}, got {credential!r}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
        raise ConfigError(f"schema name {schema!r} is not a plain T-SQL identifier")
    url = _check_storage_url(storage_url)
    env = _environment()
    specs = _resolve_tables(tables)
    loaded: list[SynapseTable] = []  # created with CREATE TABLE and loaded with COPY INTO
    aggregates: list[SynapseTable] = []  # built with CTAS from fact_play
    for spec in specs:
        _check_distribution(spec)
        if spec.kind == "agg" and (TEMPLATE_DIR / f"{spec.name}.sql.j2").exists():
            aggregates.append(SynapseTable(spec, schema, _ctas_select(env, spec, schema)))
        else:
            loaded.append(SynapseTable(spec, schema))
    context = {
        "schema": schema,
        "storage_url": url,
        "placeholder_url": url == PLACEHOLDER_STORAGE_URL,
        "credential": credential,
        "loaded": loaded,
        "aggregates": aggregates,
        "all_tables": [SynapseTable(s, schema) for s in specs],
        "scripts": SCRIPTS,
        "header": "-- Generated by `tunelake export synapse` from src/tunelake/warehouse/tables.py; do "
        "not edit.",
    }
    out = {name: env.get_template(f"{name}.j2").render(**context) for name, _ in SCRIPTS}
    out["README.md"] = env.get_template("README.md.j2").render(**context)
    return out


def export_synapse(
    out_dir: str | Path,
    storage_url: str | None = None,
    tables: Iterable[str] | None = None,
    *,
    schema: str = DEFAULT_SCHEMA,
    credential: str = "managed_identity",
) -> list[Path]:
    """Write the Synapse scripts and README into out_dir; returns the files written, in run order.

    storage_url is the folder `tunelake export gold` wrote to, as Synapse sees it
    (https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH); without it, a marked placeholder is written.
    """
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_synapse(storage_url, tables, schema=schema, credential=credential).items():
        path = target / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
