"""A listener's library and playlists in the curated zone: successive exports merged, each playback of a batch
counted once."""

from __future__ import annotations

import pyarrow as pa

from tunelake.duck import arrow_of, cursor
from tunelake.lake import zones
from tunelake.lake.store import Lake
from tunelake.sources.types import PLAYLIST_ITEMS, SAVED_TRACKS, conform


def _read_user(lake: Lake, table: str, user_key: int, schema: pa.Schema) -> pa.Table:
    rel = zones.curated_user_file(table, user_key)
    return conform(lake.read_parquet(rel), schema) if lake.exists(rel) else schema.empty_table()


def merge_saved(lake: Lake, user_key: int, rows: pa.Table) -> dict[str, int]:
    """Union of every library snapshot imported: an item already saved is a duplicate. → duplicates by batch."""
    existing = _read_user(lake, "saved_tracks", user_key, SAVED_TRACKS)
    con = cursor()
    try:
        con.register("existing", existing)
        con.register("incoming", conform(rows, SAVED_TRACKS).append_column("record_no", rows["record_no"]))
        u = arrow_of(con.sql(
            """
            SELECT *, row_number() OVER (
                       PARTITION BY coalesce(item_type, 'track'), coalesce(item_id, track_id, item_name)
                       ORDER BY _pri, batch_id, record_no) AS _rn
            FROM (SELECT *, 0 AS _pri, 0 AS record_no FROM existing
                  UNION ALL BY NAME SELECT *, 1 AS _pri FROM incoming)
            """))
        con.register("u", u)
        dups = dict(con.execute("SELECT batch_id, count(*) FROM u WHERE _rn > 1 GROUP BY ALL").fetchall())
        kept = arrow_of(con.sql("SELECT * FROM u WHERE _rn = 1 ORDER BY item_type, item_id, track_name"))
    finally:
        con.close()
    lake.write_parquet(zones.curated_user_file("saved_tracks", user_key), conform(kept, SAVED_TRACKS))
    return dups


def merge_playlist_items(lake: Lake, user_key: int, rows: pa.Table) -> tuple[dict[str, int], int]:
    """Each playlist is kept as its newest snapshot (by lastModifiedDate; on a tie the later import). Incoming rows
    that are not in the kept snapshot, or are identical to a stored row, are duplicates. → (by batch, stale rows)."""
    existing = _read_user(lake, "playlist_items", user_key, PLAYLIST_ITEMS)
    con = cursor()
    try:
        con.register("existing", existing)
        con.register("incoming", conform(rows, PLAYLIST_ITEMS).append_column("record_no", rows["record_no"]))
        u = arrow_of(con.sql(
            """
            WITH u AS (
                SELECT *, 0 AS _pri, 0 AS record_no FROM existing
                UNION ALL BY NAME SELECT *, 1 AS _pri FROM incoming
            ), snaps AS (
                SELECT playlist_id, _pri, coalesce(batch_id, '') AS b, max(playlist_modified) AS m FROM u GROUP BY ALL
            ), win AS (
                SELECT playlist_id, _pri, b FROM snaps
                QUALIFY row_number() OVER (PARTITION BY playlist_id
                                           ORDER BY m DESC NULLS LAST, _pri DESC, b DESC) = 1
            )
            SELECT u.*, (w.playlist_id IS NOT NULL) AS _win,
                   EXISTS (SELECT 1 FROM existing e WHERE e.playlist_id = u.playlist_id AND e.position = u.position
                           AND e.item_id IS NOT DISTINCT FROM u.item_id
                           AND e.track_name IS NOT DISTINCT FROM u.track_name) AS _same
            FROM u LEFT JOIN win AS w
              ON w.playlist_id = u.playlist_id AND w._pri = u._pri AND w.b = coalesce(u.batch_id, '')
            """))
        con.register("u", u)
        dups = dict(con.execute(
            "SELECT batch_id, count(*) FROM u WHERE _pri = 1 AND (NOT _win OR _same) GROUP BY ALL").fetchall())
        stale = con.execute("SELECT count(*) FROM u WHERE _pri = 1 AND NOT _win").fetchall()[0][0]
        kept = arrow_of(con.sql("SELECT * FROM u WHERE _win ORDER BY playlist_name, playlist_id, position"))
    finally:
        con.close()
    lake.write_parquet(zones.curated_user_file("playlist_items", user_key), conform(kept, PLAYLIST_ITEMS))
    return dups, stale
