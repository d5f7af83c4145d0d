"""Catalogue files: Spotify track metadata with audio features and genres, from CSV or Parquet.

New Spotify apps cannot read audio features, genres or popularity from the API any more, so a catalogue file is
how the warehouse gets them. Layouts are recognised by their columns; each has a mapping onto the curated
catalogue tables (tracks, track artists, artists, artist genres, albums).
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tunelake.duck import arrow_of
from tunelake.errors import InputError
from tunelake.sources.types import (
    CATALOG_ALBUMS,
    CATALOG_ARTIST_GENRES,
    CATALOG_ARTISTS,
    CATALOG_TRACK_ARTISTS,
    CATALOG_TRACKS,
    conform,
)

FEATURES = ("danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
            "instrumentalness", "liveness", "valence", "tempo", "time_signature")


@dataclass
class CatalogSummary:
    file: str
    layout: str
    tracks: int = 0
    artists: int = 0
    albums: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    already_imported: bool = False


def read_table(path: Path) -> pa.Table:
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        if path.suffix.lower() in (".csv", ".tsv"):
            return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(
                delimiter="\t" if path.suffix.lower() == ".tsv" else ","),
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read catalogue: {exc}".splitlines()[0], file=str(path)) from None
    raise InputError("catalogue must be a .csv, .tsv or .parquet file, or a folder holding tracks.*", file=str(path))


def surrogate(kind: str, name: str | None) -> str | None:
    """Stable id for things only known by name (same recipe as the SQL surrogate macro)."""
    if name is None:
        return None
    return "x" + hashlib.md5(f"{kind}:{name.strip().lower()}".encode()).hexdigest()[:21]


def parse_release_dates(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """'2019', '2019-05' or '2019-05-17' → (first day of the period, precision)."""
    out, precision = [], []
    for v in values.to_pylist():
        s = None if v is None else str(v).strip()
        if not s or s.lower() == "nan":
            out.append(None)
            precision.append(None)
            continue
        parts = s[:10].split("-")
        try:
            y = int(parts[0])
            m = int(parts[1]) if len(parts) > 1 else 1
            d = int(parts[2]) if len(parts) > 2 else 1
            out.append(datetime.date(y, m, d))
            precision.append({1: "year", 2: "month"}.get(len(parts), "day"))
        except (ValueError, IndexError):
            out.append(None)
            precision.append(None)
    return pa.array(out, pa.date32()), pa.array(precision, pa.string())


def _split(col: pa.ChunkedArray | pa.Array) -> list[list[str]]:
    return [[p.strip() for p in str(v).split(";") if p.strip()] if v is not None else [] for v in col.to_pylist()]


def _num(table: pa.Table, name: str, typ: pa.DataType) -> pa.Array:
    if name not in table.column_names:
        return pa.nulls(table.num_rows, typ)
    col = table[name]
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        col = pc.if_else(pc.is_in(pc.utf8_lower(col), pa.array(["", "nan", "null", "none"])), None, col)
    try:
        return pc.cast(col, typ, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pc.cast(pc.cast(col, pa.float64()), typ, safe=False)


@dataclass
class Mapped:
    tracks: pa.Table
    track_artists: pa.Table
    artists: pa.Table
    artist_genres: pa.Table
    albums: pa.Table


def _valid_ids(table: pa.Table, column: str) -> tuple[pa.Table, int]:
    ids = table[column]
    ok = pc.and_(pc.is_valid(ids), pc.greater(pc.utf8_length(pc.cast(ids, pa.string())), 0))
    kept = table.filter(ok)
    return kept, table.num_rows - kept.num_rows


def map_plain(tracks: pa.Table, artists_file: pa.Table | None, albums_file: pa.Table | None, source: str) -> Mapped:
    """The plain layout: one row per track keyed by track_id (tunelake's own, and the synthetic world's)."""
    n = tracks.num_rows
    dates, precision = parse_release_dates(tracks["release_date"]) if "release_date" in tracks.column_names else (
        pa.nulls(n, pa.date32()), pa.nulls(n, pa.string()))
    if "release_date_precision" in tracks.column_names:
        precision = pc.coalesce(pc.cast(tracks["release_date_precision"], pa.string()), precision)
    artist_ids = _split(tracks["artist_ids"]) if "artist_ids" in tracks.column_names else [[] for _ in range(n)]
    artist_names = _split(tracks["artist_names"]) if "artist_names" in tracks.column_names else (
        [[str(v)] if v is not None else [] for v in tracks["artist_name"].to_pylist()]
        if "artist_name" in tracks.column_names else [[] for _ in range(n)])
    ids_filled = [ids if ids else [surrogate("artist", nm) for nm in names] for ids, names in
                  zip(artist_ids, artist_names, strict=True)]
    generated = {a for ids, filled in zip(artist_ids, ids_filled, strict=True) if not ids for a in filled}
    track_ids = tracks["track_id"].to_pylist()
    ta_rows = [(t, a, names[i] if i < len(names) else None, i)
               for t, ids, names in zip(track_ids, ids_filled, artist_names, strict=True) for i, a in enumerate(ids)]
    primary = [ids[0] if ids else None for ids in ids_filled]
    primary_name = [names[0] if names else None for names in artist_names]
    album_ids = tracks["album_id"].to_pylist() if "album_id" in tracks.column_names else [None] * n
    album_names = tracks["album_name"].to_pylist() if "album_name" in tracks.column_names else [None] * n
    album_ids = [a or (surrogate("album", f"{pn or ''}|{an}") if an else None)
                 for a, an, pn in zip(album_ids, album_names, primary_name, strict=True)]
    cols = {
        "track_id": track_ids,
        "track_name": tracks["track_name"].cast(pa.string()) if "track_name" in tracks.column_names else None,
        "album_id": album_ids,
        "album_name": album_names,
        "artist_id": primary,
        "artist_name": primary_name,
        "release_date": dates,
        "release_date_precision": precision,
        "duration_ms": _num(tracks, "duration_ms", pa.int32()),
        "explicit": _num(tracks, "explicit", pa.bool_()),
        "popularity": _num(tracks, "popularity", pa.int16()),
        "isrc": tracks["isrc"].cast(pa.string()) if "isrc" in tracks.column_names else None,
        "source": [source] * n,
    }
    for f in FEATURES:
        cols[f] = _num(tracks, f, CATALOG_TRACKS.field(f).type)
    t = pa.table({k: v if v is not None else pa.nulls(n, CATALOG_TRACKS.field(k).type) for k, v in cols.items()})
    track_table = conform(t, CATALOG_TRACKS)
    track_artists = pa.table({
        "track_id": [r[0] for r in ta_rows], "artist_id": [r[1] for r in ta_rows],
        "artist_name": [r[2] for r in ta_rows], "position": pa.array([r[3] for r in ta_rows], pa.int16()),
    }, schema=CATALOG_TRACK_ARTISTS)

    # Artists: from the artists file when given, else from the track credits; genres likewise.
    genres_rows: list[tuple[str, str, int]] = []
    if artists_file is not None:
        a = artists_file
        artists = conform(pa.table({
            "artist_id": a["artist_id"].cast(pa.string()), "artist_name": a["artist_name"].cast(pa.string()),
            "popularity": _num(a, "popularity", pa.int16()), "followers": _num(a, "followers", pa.int64()),
            "is_surrogate": pa.array([False] * a.num_rows),
        }), CATALOG_ARTISTS)
        if "genres" in a.column_names:
            for aid, gs in zip(a["artist_id"].to_pylist(), _split(a["genres"]), strict=True):
                genres_rows += [(aid, g, i) for i, g in enumerate(gs)]
    else:
        seen: dict[str, str | None] = {}
        for _, aid, name, _ in ta_rows:
            seen.setdefault(aid, name)
        artists = conform(pa.table({
            "artist_id": list(seen), "artist_name": list(seen.values()),
            "is_surrogate": [a in generated for a in seen],
        }), CATALOG_ARTISTS)
    if not genres_rows and "genres" in tracks.column_names:
        done: set[str] = set()
        for aid, gs in zip(primary, _split(tracks["genres"]), strict=True):
            if aid and aid not in done:
                done.add(aid)
                genres_rows += [(aid, g, i) for i, g in enumerate(gs)]
    artist_genres = pa.table({
        "artist_id": [r[0] for r in genres_rows], "genre": [r[1] for r in genres_rows],
        "genre_rank": pa.array([r[2] for r in genres_rows], pa.int16()),
    }, schema=CATALOG_ARTIST_GENRES)

    if albums_file is not None:
        al = albums_file
        d, p = parse_release_dates(al["release_date"])
        if "release_date_precision" in al.column_names:
            p = pc.coalesce(pc.cast(al["release_date_precision"], pa.string()), p)
        albums = conform(pa.table({
            "album_id": al["album_id"].cast(pa.string()), "album_name": al["album_name"].cast(pa.string()),
            "artist_id": al["artist_id"].cast(pa.string()) if "artist_id" in al.column_names else None,
            "release_date": d, "release_date_precision": p,
            "album_type": al["album_type"].cast(pa.string()) if "album_type" in al.column_names else None,
        }), CATALOG_ALBUMS)
    else:
        con = duckdb.connect()
        con.register("t", track_table)
        albums = conform(arrow_of(con.sql(
            "SELECT album_id, any_value(album_name) AS album_name, any_value(artist_id) AS artist_id, "
            "min(release_date) AS release_date, any_value(release_date_precision) AS release_date_precision "
            "FROM t WHERE album_id IS NOT NULL GROUP BY album_id")), CATALOG_ALBUMS)
        con.close()
    return Mapped(track_table, track_artists, artists, artist_genres, albums)


TIDYTUESDAY_COLUMNS = {"track_id", "track_name", "track_artist", "track_popularity", "track_album_id",
                       "track_album_name", "track_album_release_date", "playlist_genre"}


def map_tidytuesday(t: pa.Table, source: str) -> Mapped:
    """TidyTuesday 2020-01-21 spotify_songs: one row per (playlist, track); artists have names only.

    Copies written through pandas `astype(str)` hold the literal string "nan" where the original had NA (5 rows
    of the Vullkano/BDDA Parquet): those become nulls. An artist's genres are the playlist genres of all of its
    tracks, most frequent first (rank 0 = primary genre), so the result does not depend on row order.
    """
    con = duckdb.connect()
    con.register("raw", t)
    con.execute(
        """
        CREATE TEMP VIEW src AS
        SELECT * REPLACE (
            nullif(CAST(track_name AS VARCHAR), 'nan') AS track_name,
            nullif(CAST(track_artist AS VARCHAR), 'nan') AS track_artist,
            nullif(CAST(track_album_name AS VARCHAR), 'nan') AS track_album_name)
        FROM raw
        """)
    # The same track appears once per playlist it was found in: keep one row, collect the playlist genres.
    one = arrow_of(con.sql(
        """
        SELECT track_id, any_value(track_name) AS track_name, any_value(track_artist) AS artist_names,
               any_value(track_album_id) AS album_id, any_value(track_album_name) AS album_name,
               any_value(CAST(track_album_release_date AS VARCHAR)) AS release_date,
               max(track_popularity) AS popularity, any_value(duration_ms) AS duration_ms,
               string_agg(DISTINCT playlist_genre, ';' ORDER BY playlist_genre) AS genres,
               any_value(danceability) AS danceability, any_value(energy) AS energy, any_value("key") AS "key",
               any_value(loudness) AS loudness, any_value("mode") AS "mode", any_value(speechiness) AS speechiness,
               any_value(acousticness) AS acousticness, any_value(instrumentalness) AS instrumentalness,
               any_value(liveness) AS liveness, any_value(valence) AS valence, any_value(tempo) AS tempo
        FROM src WHERE track_id IS NOT NULL GROUP BY track_id ORDER BY track_id
        """))
    genres = con.execute(
        """
        WITH c AS (  -- grouped like surrogate("artist", name): trimmed, case-insensitive
            SELECT lower(trim(track_artist)) AS artist, playlist_genre, count(DISTINCT track_id) AS n
            FROM src WHERE track_artist IS NOT NULL AND playlist_genre IS NOT NULL AND track_id IS NOT NULL
            GROUP BY ALL
        )
        SELECT artist, playlist_genre,
               row_number() OVER (PARTITION BY artist ORDER BY n DESC, playlist_genre) - 1 AS genre_rank
        FROM c ORDER BY artist, genre_rank
        """).fetchall()
    con.close()
    mapped = map_plain(one, None, None, source)
    mapped.artist_genres = pa.table({
        "artist_id": [surrogate("artist", a) for a, _, _ in genres], "genre": [g for _, g, _ in genres],
        "genre_rank": pa.array([r for _, _, r in genres], pa.int16()),
    }, schema=CATALOG_ARTIST_GENRES)
    return mapped


def load_catalog(path: Path, source: str) -> tuple[Mapped, str]:
    """Read a catalogue file or folder and map it by its layout."""
    artists = albums = None
    if path.is_dir():
        candidates = [path / f"tracks.{ext}" for ext in ("parquet", "csv")]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise InputError("folder holds no tracks.parquet or tracks.csv", file=str(path))
        if (path / "artists.parquet").exists():
            artists = pq.read_table(path / "artists.parquet")
        if (path / "albums.parquet").exists():
            albums = pq.read_table(path / "albums.parquet")
        table = read_table(found[0])
    else:
        table = read_table(path)
    cols = set(table.column_names)
    if cols >= TIDYTUESDAY_COLUMNS:
        return map_tidytuesday(table, source), "tidytuesday"
    if "track_id" in cols:
        return map_plain(table, artists, albums, source), "plain"
    raise InputError(
        f"unrecognised catalogue layout (columns: {', '.join(sorted(cols)[:12])}…)", file=str(path),
        hint="expected a 'track_id' column (plain layout) or the TidyTuesday spotify_songs columns")
