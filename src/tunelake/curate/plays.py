"""Curated plays: one Parquet partition per user, deduplicated by a deterministic playback id.

A playback's id is a hash of (user, end time, item, ms_played): the same playback found in two exports, or the
same export imported twice, gets the same id and is kept once. Rows already in the lake win over new ones, so a
re-import never changes what was there.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from tunelake.curate.schemas import PLAYS
from tunelake.lake import zones
from tunelake.lake.store import Lake

TABLE = "plays"

# The item part of the playback id: the Spotify id when there is one, else the names the export carries.
PLAY_ID_SQL = """
md5(concat_ws('|', CAST(user_key AS VARCHAR), CAST(epoch_ms(ended_at) AS VARCHAR),
    coalesce(track_id, episode_id, chapter_id, audiobook_id,
             'n:' || coalesce(track_name, '') || '/' || coalesce(artist_name, '') || '/' || coalesce(episode_name, ''),
             ''),
    CAST(ms_played AS VARCHAR)))
"""


@dataclass
class MergeResult:
    rows_before: int
    rows_after: int
    duplicates_by_batch: dict[str, int]


def conform(table: pa.Table, schema: pa.Schema = PLAYS) -> pa.Table:
    """Reorder/complete columns to the curated schema (missing columns become nulls)."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table[f.name].cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def read_user_plays(lake: Lake, user_key: int) -> pa.Table:
    rel = zones.curated_user_file(TABLE, user_key)
    return conform(lake.read_parquet(rel)) if lake.exists(rel) else PLAYS.empty_table()


def merge_plays(lake: Lake, user_key: int, new_rows: pa.Table) -> MergeResult:
    """Add new rows to the user's partition; rows whose playback id is already there count as duplicates."""
    existing = read_user_plays(lake, user_key)
    new_rows = conform(new_rows)
    con = duckdb.connect()
    try:
        con.register("existing", existing)
        con.register("incoming", new_rows)
        merged = con.sql(
            f"""
            WITH fresh AS (
                SELECT * REPLACE ({PLAY_ID_SQL} AS play_id) FROM incoming
            ), unioned AS (
                SELECT *, 0 AS _pri FROM existing
                UNION ALL BY NAME
                SELECT *, 1 AS _pri FROM fresh
            )
            SELECT *, row_number() OVER (PARTITION BY play_id ORDER BY _pri, batch_id, record_no) AS _rn
            FROM unioned
            """
        ).arrow()
        if hasattr(merged, "read_all"):
            merged = merged.read_all()
        con.register("merged", merged)
        dups = dict(con.sql("SELECT batch_id, count(*) FROM merged WHERE _rn > 1 GROUP BY batch_id").fetchall())
        kept = con.sql("SELECT * EXCLUDE (_pri, _rn) FROM merged WHERE _rn = 1 ORDER BY ended_at, play_id").arrow()
        if hasattr(kept, "read_all"):
            kept = kept.read_all()
    finally:
        con.close()
    kept = conform(kept)
    if new_rows.num_rows:
        lake.write_parquet(zones.curated_user_file(TABLE, user_key), kept)
    return MergeResult(existing.num_rows, kept.num_rows, dups)
