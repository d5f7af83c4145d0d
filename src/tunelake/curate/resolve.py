"""Track resolution: names → Spotify track ids, for rows that carry only names (account data, old libraries).

Account-data rows say "artist X, track Y" and nothing else. We look the pair up among the tracks tunelake already
knows (extended history and API plays of every user, saved tracks, playlist items, imported catalogues), comparing
normalised names: case-folded, accents removed, punctuation collapsed, and "feat./ft./with …" credits dropped from
both sides. A pair that matches several ids takes the one seen most often (then the smallest id), so the choice is
deterministic. A pair that matches nothing gets a stable surrogate id (`x` + 21 hex digits, the recipe of
`sources.catalog.surrogate`), so the same unresolved song is one track everywhere and can be upgraded later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from tunelake.duck import arrow_of, cursor
from tunelake.lake import zones
from tunelake.lake.store import Lake
from tunelake.sources.names import is_surrogate, keys_of, name_key, surrogate_id


@dataclass
class Resolver:
    """Known items by name key: key → (id, weight); the heaviest id wins, ties to the smallest id."""

    tracks: dict[str, tuple[str, int]] = field(default_factory=dict)
    episodes: dict[str, tuple[str, int]] = field(default_factory=dict)

    @staticmethod
    def _add(index: dict[str, tuple[str, int]], key: str, item_id: str, weight: int) -> None:
        if key.startswith("\x1f") or key.endswith("\x1f"):
            return  # a name is missing: never resolve on half a key
        cur = index.get(key)
        if cur is None:
            index[key] = (item_id, weight)
        elif cur[0] == item_id:
            index[key] = (item_id, cur[1] + weight)
        elif weight > cur[1] or (weight == cur[1] and item_id < cur[0]):
            # Keep the heaviest; weights of different ids are not summed, which is fine for a tie-break.
            index[key] = (item_id, weight)

    def add_tracks(self, ids: Iterable[str | None], artists: Iterable[str | None], names: Iterable[str | None],
                   weights: Iterable[int] | None = None) -> None:
        ids, artists, names = list(ids), list(artists), list(names)
        ws = list(weights) if weights is not None else [1] * len(ids)
        agg: dict[tuple[str, str | None, str | None], int] = {}
        for i, a, n, w in zip(ids, artists, names, ws, strict=True):
            if i and not is_surrogate(i) and n:
                agg[(i, a, n)] = agg.get((i, a, n), 0) + (w or 0)
        keys = keys_of([k[1] for k in agg], [k[2] for k in agg])
        for (i, _, _), w, key in zip(agg, agg.values(), keys, strict=True):
            self._add(self.tracks, key, i, w)

    def add_episodes(self, ids: Iterable[str | None], shows: Iterable[str | None],
                     names: Iterable[str | None]) -> None:
        seen: set[tuple[str, str | None, str | None]] = set()
        for i, s, n in zip(ids, shows, names, strict=True):
            if i and not is_surrogate(i) and n and (i, s, n) not in seen:
                seen.add((i, s, n))
                self._add(self.episodes, name_key(s, n), i, 1)

    def add_plays(self, plays: pa.Table) -> None:
        """Known tracks and episodes from curated (or incoming) play rows."""
        if not plays.num_rows:
            return
        t = plays.select(["track_id", "artist_name", "track_name"]).filter(pc.is_valid(plays["track_id"]))
        if t.num_rows:
            g = t.group_by(["track_id", "artist_name", "track_name"]).aggregate([([], "count_all")])
            self.add_tracks(g["track_id"].to_pylist(), g["artist_name"].to_pylist(), g["track_name"].to_pylist(),
                            g["count_all"].to_pylist())
        if "episode_id" in plays.column_names:
            e = plays.select(["episode_id", "show_name", "episode_name"]).filter(pc.is_valid(plays["episode_id"]))
            if e.num_rows:
                g = e.group_by(["episode_id", "show_name", "episode_name"]).aggregate([])
                self.add_episodes(g["episode_id"].to_pylist(), g["show_name"].to_pylist(),
                                  g["episode_name"].to_pylist())

    def add_named_tracks(self, table: pa.Table) -> None:
        """Saved tracks, playlist items, catalogue tracks: every table with track_id, artist_name, track_name."""
        if table.num_rows and {"track_id", "artist_name", "track_name"} <= set(table.column_names):
            self.add_tracks(table["track_id"].to_pylist(), table["artist_name"].to_pylist(),
                            table["track_name"].to_pylist())
        if table.num_rows and {"item_type", "item_id", "album_name", "track_name"} <= set(table.column_names):
            # Library and playlist episodes: album_name holds the show, track_name (or item_name) the episode.
            ep = table.filter(pc.fill_null(pc.equal(table["item_type"], "episode"), False))
            names = ep["item_name"] if "item_name" in ep.column_names else ep["track_name"]
            self.add_episodes(ep["item_id"].to_pylist(), ep["album_name"].to_pylist(),
                              pc.coalesce(names, ep["track_name"]).to_pylist())

    def resolve_tracks(self, artists: list[str | None], names: list[str | None]) -> tuple[pa.Array, pa.Array]:
        """Track ids for (artist, track) pairs, and whether each was resolved (False = surrogate)."""
        ids, ok = [], []
        cache: dict[tuple[str | None, str | None], tuple[str, bool]] = {}
        for a, n in zip(artists, names, strict=True):
            hit = cache.get((a, n))
            if hit is None:
                found = self.tracks.get(name_key(a, n))
                hit = cache[(a, n)] = (found[0], True) if found else (surrogate_id("track", a, n), False)
            ids.append(hit[0])
            ok.append(hit[1])
        return pa.array(ids, pa.string()), pa.array(ok, pa.bool_())

    def resolve_episodes(self, shows: list[str | None], names: list[str | None]) -> tuple[pa.Array, pa.Array]:
        ids, ok = [], []
        for s, n in zip(shows, names, strict=True):
            found = self.episodes.get(name_key(s, n))
            ids.append(found[0] if found else surrogate_id("episode", s, n))
            ok.append(found is not None)
        return pa.array(ids, pa.string()), pa.array(ok, pa.bool_())


def _read_columns(lake: Lake, rels: list[str], columns: list[str]) -> pa.Table | None:
    tables = []
    for rel in rels:
        try:
            tables.append(lake.read_parquet(rel, columns=columns))
        except (OSError, KeyError, pa.ArrowInvalid):
            continue  # a file without these columns (older layout) adds nothing
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


INDEX = zones.NAME_INDEX
INDEX_SCHEMA = pa.schema([("kind", pa.string()), ("item_id", pa.string()), ("first", pa.string()),
                          ("second", pa.string()), ("key", pa.string()), ("weight", pa.int64())])


def known_items(table: pa.Table) -> pa.Table:
    """(kind, item_id, first, second, weight) of the tracks and episodes a curated-like table names with an id."""
    parts = []
    cols = set(table.column_names)
    if not table.num_rows:
        return INDEX_SCHEMA.empty_table().drop_columns(["key"])
    if {"track_id", "artist_name", "track_name"} <= cols:
        t = table.select(["track_id", "artist_name", "track_name"]).filter(
            pc.and_(pc.is_valid(table["track_id"]), pc.is_valid(table["track_name"])))
        parts.append(pa.table({"kind": pa.repeat("track", t.num_rows) if t.num_rows else pa.array([], pa.string()),
                               "item_id": t["track_id"], "first": t["artist_name"], "second": t["track_name"]}))
    if {"episode_id", "show_name", "episode_name"} <= cols:
        e = table.filter(pc.and_(pc.is_valid(table["episode_id"]), pc.is_valid(table["episode_name"])))
        parts.append(pa.table({"kind": pa.repeat("episode", e.num_rows) if e.num_rows else pa.array([], pa.string()),
                               "item_id": e["episode_id"], "first": e["show_name"], "second": e["episode_name"]}))
    if {"item_type", "item_id", "album_name", "track_name"} <= cols:  # library / playlist episodes
        e = table.filter(pc.fill_null(pc.equal(table["item_type"], "episode"), False))
        names = pc.coalesce(e["item_name"], e["track_name"]) if "item_name" in cols else e["track_name"]
        e = pa.table({"kind": pa.repeat("episode", e.num_rows) if e.num_rows else pa.array([], pa.string()),
                      "item_id": e["item_id"], "first": e["album_name"], "second": names})
        parts.append(e.filter(pc.and_(pc.is_valid(e["item_id"]), pc.is_valid(e["second"]))))
    if not parts:
        return INDEX_SCHEMA.empty_table().drop_columns(["key"])
    t = pa.concat_tables([p.cast(pa.schema([(f.name, pa.string()) for f in p.schema])) for p in parts])
    t = t.group_by(["kind", "item_id", "first", "second"]).aggregate([([], "count_all")]).rename_columns(
        ["kind", "item_id", "first", "second", "weight"])
    return t.filter(pa.array([not is_surrogate(i) for i in t["item_id"].to_pylist()], pa.bool_())) if t.num_rows else t


def with_keys(items: pa.Table) -> pa.Table:
    """Known items with their name keys, ready for `record_items` (normalising here spreads that work over the
    processes of a parallel import instead of leaving it all to the end)."""
    return items.append_column("key", pa.array(keys_of(items["first"].to_pylist(), items["second"].to_pylist()),
                                               pa.string()))


def _read_index(lake: Lake) -> pa.Table | None:
    if not lake.exists(INDEX):
        return None
    return lake.read_parquet(INDEX).cast(INDEX_SCHEMA)


def record_known(lake: Lake, tables: list[pa.Table]) -> int:
    """Add the ids these curated-like tables name to the lake's name index; returns new name triples."""
    return record_items(lake, [known_items(t) for t in tables if t.num_rows])


def record_items(lake: Lake, items: list[pa.Table]) -> int:
    """Add known items (`known_items`, with or without keys) to the lake's name index (`curated/_name_index`);
    returns new name triples.

    Only triples not yet in the index are normalised, so an import of tracks the lake already knows costs a join,
    not a pass of Python over every name; the index is what `lake_resolver` reads instead of every user's plays.
    """
    with lake.transaction("name index"):  # the index and the pending contributions it absorbs change together
        return _record_items(lake, items)


def _record_items(lake: Lake, items: list[pa.Table]) -> int:

    pending = lake.glob(f"{zones.NAME_INDEX_PENDING}/*.parquet")
    items = [*items, *(lake.read_parquet(r) for r in pending)]
    contrib = [i if "key" in i.column_names else i.append_column("key", pa.nulls(i.num_rows, pa.string()))
               for i in items if i.num_rows]
    for rel in pending:
        lake.delete(rel)  # merged below: the same transaction writes the index and drops these
    existing = _read_index(lake)
    if existing is None:
        existing = _full_scan(lake)
    if not contrib and lake.exists(INDEX):
        return 0
    con = cursor()
    try:
        con.register("old", existing)
        con.register("inc", pa.concat_tables([c.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA) for c in contrib])
                     if contrib else INDEX_SCHEMA.empty_table())
        fresh = arrow_of(con.sql(
            """SELECT kind, item_id, first, second, any_value(key) AS key, sum(weight)::BIGINT AS weight FROM inc
               WHERE NOT EXISTS (SELECT 1 FROM old o WHERE o.kind = inc.kind AND o.item_id = inc.item_id
                                 AND o.first IS NOT DISTINCT FROM inc.first AND o.second = inc.second)
               GROUP BY kind, item_id, first, second"""))
        if fresh["key"].null_count:
            keys = pc.coalesce(fresh["key"], pa.array(keys_of(fresh["first"].to_pylist(), fresh["second"].to_pylist()),
                                                      pa.string()))
            fresh = fresh.set_column(fresh.column_names.index("key"), "key", keys)
        con.register("fresh", fresh)
        merged = arrow_of(con.sql(
            """SELECT kind, item_id, first, second, any_value(key) AS key, sum(weight)::BIGINT AS weight FROM (
                   SELECT * FROM old UNION ALL BY NAME SELECT * FROM fresh
                   UNION ALL BY NAME SELECT kind, item_id, first, second, NULL AS key, weight FROM inc
                   WHERE EXISTS (SELECT 1 FROM old o WHERE o.kind = inc.kind AND o.item_id = inc.item_id
                                 AND o.first IS NOT DISTINCT FROM inc.first AND o.second = inc.second))
               GROUP BY kind, item_id, first, second ORDER BY kind, key, item_id"""))
    finally:
        con.close()
    lake.write_parquet(INDEX, merged.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA))
    return fresh.num_rows


def _full_scan(lake: Lake) -> pa.Table:
    """The index of a lake written before the index existed: everything it knows, normalised once."""
    tables = []
    plays = _read_columns(lake, lake.glob(f"{zones.curated_table_dir('plays')}/user_key=*/data.parquet"),
                          ["track_id", "artist_name", "track_name", "episode_id", "show_name", "episode_name"])
    if plays is not None:
        tables.append(plays)
    for table in ("saved_tracks", "playlist_items"):
        t = _read_columns(lake, lake.glob(f"{zones.curated_table_dir(table)}/user_key=*/data.parquet"),
                          ["track_id", "artist_name", "track_name"])
        if t is not None:
            tables.append(t)
    if lake.exists(zones.curated_file("catalog_tracks")):
        cat = _read_columns(lake, [zones.curated_file("catalog_tracks")], ["track_id", "artist_name", "track_name"])
        if cat is not None:
            tables.append(cat)
    items = [known_items(t) for t in tables]
    items = [i for i in items if i.num_rows]
    if not items:
        return INDEX_SCHEMA.empty_table()
    t = pa.concat_tables(items).group_by(["kind", "item_id", "first", "second"]).aggregate([("weight", "sum")])
    t = t.rename_columns(["kind", "item_id", "first", "second", "weight"])
    return t.append_column("key", pa.array(keys_of(t["first"].to_pylist(), t["second"].to_pylist()), pa.string())
                           ).select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA)


def rebuild_index(lake: Lake) -> int:
    """Rebuild the name index from everything in the lake (after a parallel import wrote none of it)."""
    index = _full_scan(lake)
    lake.write_parquet(INDEX, index)
    return index.num_rows


def lake_resolver(lake: Lake) -> Resolver:
    """A resolver over everything the lake knows (plays of every user, libraries, playlists, catalogues), read
    from the name index; an index is built first for a lake that has none."""

    index = _read_index(lake)
    if index is None:
        index = _full_scan(lake)
        if index.num_rows:
            lake.write_parquet(INDEX, index)
    pending = [lake.read_parquet(r) for r in lake.glob(f"{zones.NAME_INDEX_PENDING}/*.parquet")]
    if pending:  # committed by listeners whose import's last step did not run: they count as merged
        index = pa.concat_tables([index, *(p.select(INDEX_SCHEMA.names).cast(INDEX_SCHEMA) for p in pending)])
    r = Resolver()
    if not index.num_rows:
        return r
    con = cursor()
    try:
        con.register("idx", index)
        best = con.execute(
            """WITH w AS (SELECT kind, key, item_id, sum(weight) AS w FROM idx GROUP BY ALL)
               SELECT kind, key, first(item_id ORDER BY w DESC, item_id) AS item_id, max(w) AS w
               FROM w WHERE NOT starts_with(key, chr(31)) AND NOT ends_with(key, chr(31))
               GROUP BY kind, key""").fetchall()
    finally:
        con.close()
    for kind, key, item_id, w in best:
        (r.tracks if kind == "track" else r.episodes)[key] = (item_id, int(w))
    return r
