"""What a workspace holds: the lake (batches, sources, users, date ranges) and the warehouse (tables, rows,
freshness, the last gates) — `tunelake status`, as data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tunelake.lake import manifest
from tunelake.warehouse.build import register_curated
from tunelake.warehouse.engines import DuckDBEngine
from tunelake.warehouse.store import open_warehouse, read_pointer
from tunelake.workspace import Workspace


def lake_status(ws: Workspace) -> dict[str, Any]:
    """Batches by source, users, play date ranges and quarantined counts, from the manifest and curated zone."""
    lake = ws.lake
    batches = manifest.list_batches(lake)
    sources: dict[str, dict[str, Any]] = {}
    for b in batches:
        s = sources.setdefault(b.source, {"source": b.source, "batches": 0, "users": set(), "read": 0,
                                          "accepted": 0, "duplicates": 0, "merged": 0, "quarantined": 0,
                                          "last_import": ""})
        s["batches"] += 1
        s["users"].add(b.handle)
        for k in ("read", "accepted", "duplicates", "merged"):
            s[k] += getattr(b, k)
        s["quarantined"] += b.quarantined_total
        s["last_import"] = max(s["last_import"], b.imported_at[:19])
    engine = DuckDBEngine()
    try:
        register_curated(engine, lake)
        ranges = {r[0]: r[1:] for r in engine.execute(
            "SELECT source, min(ended_at), max(ended_at), count(*) FROM cur_plays GROUP BY source").fetchall()}
    finally:
        engine.close()
    rows = []
    for name, s in sorted(sources.items()):
        lo, hi, n = ranges.get(name, (None, None, None))
        rows.append({**s, "users": len(s["users"]), "curated_plays": n, "first_play": str(lo or "")[:10],
                     "last_play": str(hi or "")[:10]})
    return {"users": len(manifest.list_users(lake)), "sources": rows}


def warehouse_status(ws: Workspace) -> dict[str, Any] | None:

    pointer = read_pointer(ws)
    if not pointer:
        return None
    con = open_warehouse(ws)
    try:
        tables = con.execute("SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'main' "
                             "ORDER BY table_name").fetchall()
        counts = [{"table": t, "rows": con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]} for t, _ in tables]
        gates = None
        if any(t == "meta_quality" for t, _ in tables):
            gates = con.execute(
                "SELECT run_id, count(*), count(*) FILTER (WHERE status = 'pass') FROM meta_quality "
                "WHERE run_id = (SELECT run_id FROM meta_quality ORDER BY checked_at DESC, run_id DESC LIMIT 1) "
                "GROUP BY run_id").fetchone()
    finally:
        con.close()
    age = None
    if pointer.get("built_at"):
        built = datetime.fromisoformat(pointer["built_at"])
        age = round((datetime.now(UTC) - (built if built.tzinfo else built.replace(tzinfo=UTC))).total_seconds() / 60,
                    1)
    return {"file": pointer["file"], "built_at": pointer.get("built_at"), "age_minutes": age,
            "engine": pointer.get("engine"), "updated_by": pointer.get("updated_by"),
            "fingerprint": pointer.get("fingerprint"),
            "quality": None if not gates else {"run_id": gates[0], "gates": gates[1], "passed": gates[2]},
            "tables": counts}
