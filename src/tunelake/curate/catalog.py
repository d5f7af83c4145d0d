"""A track catalogue into the curated catalogue tables, as one commit under the workspace lock: the tables, the
names it teaches the name index, and its batch entry become visible together."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

from tunelake.curate import resolve
from tunelake.duck import arrow_of
from tunelake.errors import InputError
from tunelake.lake import manifest, zones
from tunelake.lake.manifest import Batch, utcnow
from tunelake.lake.store import Lake
from tunelake.sources.catalog import CatalogSummary, _valid_ids, load_catalog
from tunelake.sources.types import (
    CATALOG_ALBUMS,
    CATALOG_ARTIST_GENRES,
    CATALOG_ARTISTS,
    CATALOG_TRACK_ARTISTS,
    CATALOG_TRACKS,
    conform,
)
from tunelake.workspace import Workspace


def import_catalog(ws: Workspace, path: str | Path, progress: Callable[[int, int, str], None] | None = None
                   ) -> CatalogSummary:
    """Import a catalogue file (idempotent: the same bytes again add nothing)."""
    with ws.writing(command="import-catalog"):
        return _import(ws.lake, path, progress)


def _merge(lake: Lake, name: str, new: pa.Table, keys: list[str], schema: pa.Schema) -> int:
    """Upsert into a curated catalogue table: rows of the new file replace rows with the same key."""
    rel = zones.curated_file(name)
    old = conform(lake.read_parquet(rel), schema) if lake.exists(rel) else schema.empty_table()
    con = duckdb.connect()
    con.register("old", old)
    con.register("new", conform(new, schema))
    k = ", ".join(keys)
    merged = arrow_of(con.sql(
        f"SELECT * EXCLUDE (_p) FROM (SELECT *, 0 AS _p FROM new UNION ALL BY NAME SELECT *, 1 AS _p FROM old) "
        f"QUALIFY row_number() OVER (PARTITION BY {k} ORDER BY _p) = 1 ORDER BY {k}"))
    if name == "catalog_track_artists" or name == "catalog_artist_genres":
        # Credits and genres of a re-described track/artist are replaced as a whole.
        parent = "track_id" if name == "catalog_track_artists" else "artist_id"
        merged = arrow_of(con.sql(
            f"SELECT * FROM new UNION ALL BY NAME SELECT * FROM old WHERE {parent} NOT IN (SELECT {parent} FROM new)"
            f" ORDER BY {k}"))
    con.close()
    lake.write_parquet(rel, conform(merged, schema))
    return new.num_rows


def _import(lake: Lake, path: str | Path, progress: Callable[[int, int, str], None] | None = None
                   ) -> CatalogSummary:
    """Import a catalogue file into the curated catalogue tables (idempotent: same bytes, same result)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", file=str(path))
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
    content_hash = digest.hexdigest()
    batch_id = manifest.batch_id_for("catalog", "_catalog", content_hash)
    if manifest.find_batch(lake, batch_id):
        return CatalogSummary(str(path), "", already_imported=True)
    with lake.transaction(f"catalog {path.name}"):  # the tables and their batch entry become visible together
        return _import_catalog(lake, path, files, batch_id, content_hash, progress)


def _import_catalog(lake: Lake, path: Path, files: list[Path], batch_id: str, content_hash: str,
                    progress: Callable[[int, int, str], None] | None) -> CatalogSummary:
    mapped, layout = load_catalog(path, source=path.name)
    summary = CatalogSummary(str(path), layout)
    steps = [("catalog_tracks", mapped.tracks, ["track_id"], CATALOG_TRACKS),
             ("catalog_track_artists", mapped.track_artists, ["track_id", "artist_id"], CATALOG_TRACK_ARTISTS),
             ("catalog_artists", mapped.artists, ["artist_id"], CATALOG_ARTISTS),
             ("catalog_artist_genres", mapped.artist_genres, ["artist_id", "genre"], CATALOG_ARTIST_GENRES),
             ("catalog_albums", mapped.albums, ["album_id"], CATALOG_ALBUMS)]
    for i, (name, table, keys, schema) in enumerate(steps):
        table, bad = _valid_ids(table, keys[0])
        if bad:
            summary.rejected[f"{name}: missing {keys[0]}"] = bad
        _merge(lake, name, table, keys, schema)
        if progress:
            progress(i + 1, len(steps), name)
    resolve.record_known(lake, [mapped.tracks])  # catalogue names resolve account-data rows from now on
    summary.tracks, summary.artists, summary.albums = (mapped.tracks.num_rows, mapped.artists.num_rows,
                                                       mapped.albums.num_rows)
    manifest.commit_batch(lake, Batch(
        batch_id=batch_id, source="catalog", handle="_catalog", user_key=0, name=path.name,
        content_hash=content_hash, raw_path="", imported_at=utcnow().isoformat(),
        bytes=sum(f.stat().st_size for f in files), file_format=layout, read=mapped.tracks.num_rows,
        accepted=mapped.tracks.num_rows - sum(summary.rejected.values()),
        quarantined=dict(summary.rejected),
    ))
    return summary
