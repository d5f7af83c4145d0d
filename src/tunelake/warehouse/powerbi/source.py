"""Where the Power BI model reads its tables from, in Power Query M: the gold Parquet folder (a local folder or an
ADLS Gen2 URL) or the Synapse dedicated SQL pool.

The location is a model parameter (Transform data → Edit parameters), so pointing a project at another folder or
pool needs no regeneration. The gold layout is the one `tunelake export gold` writes (`<location>/<table>/part-N
.parquet`); the Synapse tables are the ones `tunelake export synapse` creates (`<schema>.<table>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tunelake.errors import ConfigError
from tunelake.warehouse.tables import TABLES

SOURCES = ("parquet", "synapse")
MODES = ("import", "directQuery")
PLACEHOLDER_FOLDER = r"C:\tunelake\gold"
PLACEHOLDER_SERVER = "<WORKSPACE>.sql.azuresynapse.net"
PLACEHOLDER_DATABASE = "<DEDICATED_POOL>"

M_TYPES = {"VARCHAR": "type text", "BIGINT": "Int64.Type", "INTEGER": "Int64.Type", "SMALLINT": "Int64.Type",
           "DOUBLE": "type number", "BOOLEAN": "type logical", "TIMESTAMP": "type datetime", "DATE": "type date"}
_ADLS = re.compile(r"^https://[a-z0-9]+\.dfs\.core\.windows\.net/[^/\s]+(/\S*)?$")
_ABFSS = re.compile(r"^abfss://(?P<container>[^@/\s]+)@(?P<account>[a-z0-9]+)\.dfs\.core\.windows\.net(?P<path>/\S*)?$")


def m_string(value: str) -> str:
    """An M text literal."""
    return '"' + value.replace('"', '""') + '"'


def adls_url(location: str) -> str | None:
    """The https:// (dfs) form of an ADLS Gen2 location, or None for a local folder; ConfigError for any other URL."""
    loc = location.rstrip("/")
    if m := _ABFSS.match(loc):
        return f"https://{m['account']}.dfs.core.windows.net/{m['container']}{m['path'] or ''}"
    if _ADLS.match(loc):
        return loc
    if re.match(r"^[a-z][a-z0-9+]*://", loc, re.IGNORECASE):
        raise ConfigError(
            f"Power BI cannot read the gold folder at {location!r}",
            hint="give a local folder, or the ADLS Gen2 folder as https://ACCOUNT.dfs.core.windows.net/CONTAINER/PATH "
            "or abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH",
        )
    return None


@dataclass(frozen=True)
class Source:
    kind: str  # parquet | synapse
    mode: str  # import | directQuery
    location: str  # gold folder / ADLS URL, or the Synapse server
    database: str = ""
    schema: str = "tunelake"
    parameters: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (value, description)

    def partition(self, table: str) -> str:
        """The M query that loads one table."""
        if self.kind == "synapse":
            return "\n".join([
                "let",
                "    Source = Sql.Database(SynapseServer, SynapseDatabase),",
                f"    Data = Source{{[Schema = {m_string(self.schema)}, Item = {m_string(table)}]}}[Data]",
                "in",
                "    Data",
            ])
        files = (f'AzureStorage.DataLake(GoldLocation & "/{table}", [HierarchicalNavigation = false])'
                 if adls_url(self.location) else f'Folder.Files(GoldLocation & "\\{table}")')
        types = ", ".join(f"{{{m_string(c.name)}, {M_TYPES[c.type]}}}" for c in TABLES[table].columns)
        return "\n".join([
            "let",
            f"    Files = {files},",
            '    Parts = Table.SelectRows(Files, each Text.Lower([Extension]) = ".parquet"),',
            "    Data = Table.Combine(List.Transform(Parts[Content], each Parquet.Document(_))),",
            f"    Typed = Table.TransformColumnTypes(Data, {{{types}}})",
            "in",
            "    Typed",
        ])


def make_source(kind: str = "parquet", location: str | None = None, *, database: str | None = None,
                schema: str = "tunelake", mode: str | None = None) -> Source:
    """Validate the options of `tunelake export powerbi` into a Source."""
    if kind not in SOURCES:
        raise ConfigError(f"Power BI source must be one of {', '.join(SOURCES)}, got {kind!r}")
    mode = {"import": "import", "directquery": "directQuery"}.get((mode or "").lower(), mode)
    if kind == "parquet":
        if mode not in (None, "import"):
            raise ConfigError("the gold Parquet source can only be imported",
                              hint="drop --mode, or use --source synapse for DirectQuery")
        where = location or PLACEHOLDER_FOLDER
        url = adls_url(where)
        desc = ("ADLS Gen2 folder that `tunelake export gold` wrote (https://ACCOUNT.dfs.core.windows.net/CONTAINER/PATH)"
                if url else "Local folder that `tunelake export gold` wrote (one folder per table)")
        return Source("parquet", "import", url or where, parameters={"GoldLocation": (url or where, desc)})
    if mode not in (None, *MODES):
        raise ConfigError(f"Power BI mode must be DirectQuery or Import, got {mode!r}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", schema):
        raise ConfigError(f"schema name {schema!r} is not a plain T-SQL identifier")
    server = location or PLACEHOLDER_SERVER
    db = database or PLACEHOLDER_DATABASE
    return Source("synapse", mode or "directQuery", server, db, schema, parameters={
        "SynapseServer": (server, "Synapse SQL endpoint, e.g. myworkspace.sql.azuresynapse.net"),
        "SynapseDatabase": (db, "Dedicated SQL pool that `tunelake export synapse` loaded"),
    })
