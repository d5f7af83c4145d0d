"""Data-quality gates: run after every build, before the new warehouse becomes current.

The gates are generated from the table specs (primary keys, NOT NULL columns, `references`, timestamp and
`ms_played` columns), so a table added to `tables.py` is checked without touching this file. On top of those,
three reconciliations prove that nothing was lost or invented between the manifest (what was read), the curated
zone and the facts. A failed gate raises `QualityGateError` with up to 20 offending keys, and the build that ran
it is discarded, so readers keep the last warehouse that passed.

Gates run through `Engine.query` (portable SQL: DuckDB and Spark), inside the build session where the curated
zone is visible as the `cur_<table>` views.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from tunelake.errors import QualityGateError
from tunelake.lake import manifest, zones
from tunelake.lake.store import Lake
from tunelake.sources.types import CURATED, SCROBBLE_SOURCES
from tunelake.warehouse.engines import Engine
from tunelake.warehouse.model_graph import PER_USER
from tunelake.warehouse.tables import TABLES, Table

MAX_KEYS = 20
EARLIEST = datetime(2006, 1, 1)  # Spotify was founded in 2006: nothing can have been played before
LOCAL_SLACK = timedelta(hours=14)  # a local-time column may run up to UTC+14 ahead of UTC

Query = Callable[[str], list[dict[str, Any]]]


@dataclass
class GateResult:
    check_name: str
    table_name: str
    status: str  # pass | fail
    failing_rows: int = 0
    sample_keys: list[Any] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def describe(self) -> str:
        keys = json.dumps(self.sample_keys[:5], default=str)
        return f"{self.check_name} on {self.table_name}: {self.failing_rows} rows (e.g. {keys})"


def _lit(ts: datetime) -> str:
    return f"TIMESTAMP '{ts:%Y-%m-%d %H:%M:%S}'"


def _existing(q: Query) -> set[str]:
    try:
        rows = q("SELECT table_name FROM information_schema.tables")
        return {r["table_name"] for r in rows}
    except Exception:  # engines without information_schema (Spark): SHOW TABLES
        return {r.get("tableName") or r.get("table_name") for r in q("SHOW TABLES")}


def _key_obj(row: dict[str, Any], cols: list[str]) -> dict[str, Any]:
    return {c: (v if isinstance(v, int | float | str | bool) or v is None else str(v))
            for c, v in row.items() if c in cols}


def _result(name: str, table: str, failing: int, keys: list[Any], **details: Any) -> GateResult:
    return GateResult(name, table, "pass" if failing == 0 else "fail", int(failing), keys[:MAX_KEYS], details)


def _failing(q: Query, sql: str) -> tuple[list[dict[str, Any]], int]:
    """The first failing rows of a query with a ``total`` window column → (rows, total). One pass over the table
    gives both the count and the keys to show (a second query for the count doubled the gates' time: at 100M plays
    every gate is a full scan or GROUP BY of fact_play)."""
    rows = q(sql)
    return rows, int(rows[0]["total"]) if rows else 0


# --- generated from the specs ---------------------------------------------------------------------------------


def gate_primary_key(q: Query, spec: Table) -> GateResult:
    keys = list(spec.primary_key)
    cols = ", ".join(keys)
    rows, total = _failing(q, f"SELECT *, sum(n) OVER () AS total FROM (SELECT {cols}, count(*) AS n FROM "
                              f"{spec.name} GROUP BY {cols} HAVING count(*) > 1) AS d ORDER BY n DESC, {cols} "
                              f"LIMIT {MAX_KEYS}")
    return _result("primary_key_unique", spec.name, total, [_key_obj(r, keys) for r in rows])


def gate_not_null(q: Query, spec: Table) -> GateResult:
    required = [c.name for c in spec.columns if not c.nullable]
    if not required:
        return _result("not_null", spec.name, 0, [])
    cond = " OR ".join(f"{c} IS NULL" for c in required)
    which = ", ".join(f"CASE WHEN {c} IS NULL THEN '{c}' END" for c in required)
    keys = list(spec.primary_key)
    rows, total = _failing(q, f"SELECT {', '.join(keys)}, concat_ws(',', {which}) AS null_columns, "
                              f"count(*) OVER () AS total FROM {spec.name} WHERE {cond} LIMIT {MAX_KEYS}")
    return _result("not_null", spec.name, total, [_key_obj(r, [*keys, "null_columns"]) for r in rows])


def gate_reference(q: Query, spec: Table, column: str, ref: str) -> GateResult:
    ref_table, ref_col = ref.split(".")
    where = (f"t.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {ref_table} AS r WHERE r.{ref_col} = t.{column})")
    rows, total = _failing(q, f"SELECT *, sum(n) OVER () AS total FROM (SELECT t.{column} AS k, count(*) AS n "
                              f"FROM {spec.name} AS t WHERE {where} GROUP BY t.{column}) AS d ORDER BY n DESC, k "
                              f"LIMIT {MAX_KEYS}")
    return _result(f"references:{column}", spec.name, total, [r["k"] for r in rows], references=ref)


def gate_timestamps(q: Query, spec: Table, now: datetime) -> GateResult | None:
    cols = [c.name for c in spec.columns if c.type == "TIMESTAMP"]
    if not cols:
        return None
    conds = []
    for c in cols:
        hi = now + LOCAL_SLACK if c.endswith("_local") else now
        conds.append(f"({c} > {_lit(hi)} OR {c} < {_lit(EARLIEST)})")
    cond = " OR ".join(conds)
    keys = list(spec.primary_key)
    picked = ", ".join(dict.fromkeys([*keys, *cols]))
    rows, total = _failing(q, f"SELECT {picked}, count(*) OVER () AS total FROM {spec.name} WHERE {cond} "
                              f"LIMIT {MAX_KEYS}")
    return _result("timestamps_in_range", spec.name, total, [_key_obj(r, [*keys, *cols]) for r in rows],
                   earliest=str(EARLIEST), latest=str(now))


def gate_ms_played(q: Query, spec: Table) -> GateResult | None:
    if "ms_played" not in spec.column_names:
        return None
    keys = list(spec.primary_key)
    rows, total = _failing(q, f"SELECT {', '.join(keys)}, ms_played, count(*) OVER () AS total FROM {spec.name} "
                              f"WHERE ms_played < 0 LIMIT {MAX_KEYS}")
    return _result("ms_played_non_negative", spec.name, total, [_key_obj(r, [*keys, "ms_played"]) for r in rows])


# --- reconciliation: manifest → curated → facts ----------------------------------------------------------------


def is_play_batch(b: manifest.Batch) -> bool:
    """Batches whose accepted rows land in curated plays (exports, and the API's recently-played pulls)."""
    return b.source in ("extended", "account", *SCROBBLE_SOURCES) or (
        b.source == "api" and b.name.endswith("recently-played"))


def _by_user(rows: list[dict[str, Any]]) -> dict[int, int]:
    return {int(r["user_key"]): int(r["n"]) for r in rows}


def _compare(name: str, table: str, expected: dict[int, int], actual: dict[int, int],
             handles: dict[int, str], **details: Any) -> GateResult:
    bad = []
    for uk in sorted(set(expected) | set(actual)):
        e, a = expected.get(uk, 0), actual.get(uk, 0)
        if e != a:
            bad.append({"user_key": uk, "handle": handles.get(uk), "expected": e, "actual": a})
    failing = sum(abs(b["expected"] - b["actual"]) for b in bad)
    bad.sort(key=lambda b: -abs(b["expected"] - b["actual"]))
    return _result(name, table, failing, bad, expected=sum(expected.values()), actual=sum(actual.values()),
                   **details)


def reconcile(q: Query, lake: Lake, users: set[int] | None = None) -> list[GateResult]:
    """read − quarantined − duplicates − merged = curated rows, per user; curated music = fact_play; curated
    episodes and audiobooks = fact_episode_play. Rows excluded on purpose (content_type 'unknown', music rows
    without a track id) are counted in the details, not hidden. `users`: only those listeners (see run_gates)."""
    batches = [b for b in manifest.list_batches(lake) if is_play_batch(b)
               and (users is None or int(b.user_key) in users)]
    if users is not None:
        scoped = "(SELECT * FROM {t} WHERE user_key IN (SELECT user_key FROM _gate_users))"
        # the curated plays of those listeners only (`run_gates` registers them): filtering the view over the
        # whole zone read every listener's file, four times
        q = _scoped_query(q, {"cur_plays": "_gate_cur_plays",
                              **{t: scoped.format(t=t) for t in ("fact_play", "fact_episode_play")}})
    handles = {int(u["user_key"]): u["handle"] for u in manifest.list_users(lake)}
    expected: dict[int, int] = {}
    for b in batches:
        expected[int(b.user_key)] = expected.get(int(b.user_key), 0) + (
            b.read - b.quarantined_total - b.duplicates - b.merged)
    curated = _by_user(q("SELECT user_key, count(*) AS n FROM cur_plays GROUP BY user_key"))
    totals = {
        "read": sum(b.read for b in batches), "quarantined": sum(b.quarantined_total for b in batches),
        "duplicates": sum(b.duplicates for b in batches), "merged": sum(b.merged for b in batches),
        "batches": len(batches),
    }
    out = [_compare("reconcile_raw_to_curated", "cur_plays", expected, curated, handles, **totals)]

    music = _by_user(q("SELECT user_key, count(*) AS n FROM cur_plays WHERE content_type = 'track' "
                       "AND track_id IS NOT NULL GROUP BY user_key"))
    facts = _by_user(q("SELECT user_key, count(*) AS n FROM fact_play GROUP BY user_key"))
    excluded = q("SELECT sum(CASE WHEN content_type NOT IN ('track', 'episode', 'audiobook') OR content_type IS NULL "
                 "THEN 1 ELSE 0 END) AS other_content, "
                 "sum(CASE WHEN content_type = 'track' AND track_id IS NULL THEN 1 ELSE 0 END) AS track_without_id "
                 "FROM cur_plays")[0]
    excluded = {k: int(v or 0) for k, v in excluded.items()}
    out.append(_compare("reconcile_curated_to_facts", "fact_play", music, facts, handles,
                        excluded_on_purpose=excluded))
    spoken = _by_user(q("SELECT user_key, count(*) AS n FROM cur_plays WHERE content_type IN ('episode', 'audiobook') "
                        "GROUP BY user_key"))
    episodes = _by_user(q("SELECT user_key, count(*) AS n FROM fact_episode_play GROUP BY user_key"))
    out.append(_compare("reconcile_curated_to_facts", "fact_episode_play", spoken, episodes, handles))
    return out


def _scoped_query(q: Query, tables: dict[str, str]) -> Query:
    def scoped(sql: str) -> list[dict[str, Any]]:
        for name, rel in tables.items():
            sql = re.sub(rf"\bFROM {name}\b", f"FROM {rel}", sql)
        return q(sql)
    return scoped


# --- running them ---------------------------------------------------------------------------------------------


def run_gates(engine: Engine, lake: Lake | None, *, now: datetime | None = None,
              users: set[int] | None = None) -> list[GateResult]:
    """Every gate over the tables present; reconciliation too when `lake` is given (needs the cur_* views).

    `users` scopes the per-listener tables (and the reconciliation) to those listeners: after an incremental build
    the other listeners' rows are the ones of the previous file, which passed these gates, so checking them again
    proves nothing new; whole-warehouse tables are always checked in full."""
    def q(sql: str) -> list[dict[str, Any]]:
        return engine.query(sql).to_pylist()

    now = now or datetime.now(UTC).replace(tzinfo=None)
    present = _existing(q)
    if users is not None:
        engine.register_arrow("_gate_users", pa.table({"user_key": pa.array(sorted(users), pa.int64())}))
        if lake is not None:
            files = [zones.curated_user_file("plays", k) for k in sorted(users)]
            engine.register_parquet("_gate_cur_plays", [lake.read_uri(f) for f in files if lake.exists(f)],
                                    CURATED["plays"])
    results: list[GateResult] = []
    for spec in TABLES.values():
        if spec.layer == "meta" or spec.name not in present:
            continue
        if users is not None and spec.name in PER_USER:
            spec = replace(spec, name=f"(SELECT * FROM {spec.name} WHERE user_key IN "
                                      "(SELECT user_key FROM _gate_users))")
        results.append(_named(gate_primary_key(q, spec)))
        results.append(_named(gate_not_null(q, spec)))
        for col in spec.columns:
            if col.references and col.references.split(".")[0] in present:
                results.append(_named(gate_reference(q, spec, col.name, col.references)))
        for extra in (gate_timestamps(q, spec, now), gate_ms_played(q, spec)):
            if extra is not None:
                results.append(_named(extra))
    if lake is not None:
        results.extend(reconcile(q, lake, users))
    return results


def _named(result: GateResult) -> GateResult:
    """A scoped gate reports the table's name, not the subquery it ran on."""
    m = re.match(r"\(SELECT \* FROM (\w+) WHERE user_key IN", result.table_name)
    if m:
        result.table_name = m.group(1)
        result.details["scope"] = "listeners changed by this build"
    return result


def summary_line(results: list[GateResult]) -> str:
    passed = sum(r.passed for r in results)
    return f"{passed}/{len(results)} gates passed"


def store_results(con: duckdb.DuckDBPyConnection, run_id: str, results: list[GateResult],
                  checked_at: datetime | None = None) -> None:
    """Write the results into meta_quality of a warehouse file (replacing this run's earlier results)."""
    checked_at = checked_at or datetime.now(UTC).replace(tzinfo=None)
    con.execute("DELETE FROM meta_quality WHERE run_id = ?", [run_id])
    rows = [(run_id, r.check_name, r.table_name, r.status, r.failing_rows, json.dumps(r.sample_keys, default=str),
             checked_at) for r in results]
    if rows:
        con.executemany("INSERT INTO meta_quality VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def raise_for_failures(results: list[GateResult]) -> None:
    failed = [r for r in results if not r.passed]
    if not failed:
        return
    err = QualityGateError(
        f"{len(failed)} of {len(results)} quality gates failed: " + "; ".join(r.describe() for r in failed[:5]),
        hint="the previous warehouse is still current; fix the curated data (or re-import) and run again",
    )
    err.results = results  # type: ignore[attr-defined]
    err.failed = failed  # type: ignore[attr-defined]
    raise err


def as_dicts(results: list[GateResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]


def check_current(ws: Any) -> list[GateResult]:
    """Run every gate on the current warehouse (read-only) against the lake as it is now."""
    from tunelake.warehouse.build import register_curated
    from tunelake.warehouse.engines.duckdb import DuckDBEngine
    from tunelake.warehouse.store import current_warehouse_file

    engine = DuckDBEngine(current_warehouse_file(ws), read_only=True)
    try:
        lake = ws.lake
        register_curated(engine, lake)
        return run_gates(engine, lake)
    finally:
        engine.close()
