"""Track resolution: names → Spotify track ids, for rows that carry only names (account data, old libraries).

Account-data rows say "artist X, track Y" and nothing else. We look the pair up among the tracks tunelake already
knows (extended history and API plays of every user, saved tracks, playlist items, imported catalogues), comparing
normalised names: case-folded, accents removed, punctuation collapsed, and "feat./ft./with …" credits dropped from
both sides. A pair that matches several ids takes the one seen most often (then the smallest id), so the choice is
deterministic. A pair that matches nothing gets a stable surrogate id (`x` + 21 hex digits, the recipe of
`sources.catalog.surrogate`), so the same unresolved song is one track everywhere and can be upgraded later.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tunelake.lake import zones
from tunelake.lake.store import Lake

_FEAT = re.compile(
    r"\s*[\(\[]\s*(?:feat\.?|ft\.?|featuring|with)\s[^\)\]]*[\)\]]"  # "(feat. X)", "[with Y]"
    r"|\s+(?:feat\.?|ft\.?|featuring)\s.*$",  # trailing "feat. X"
    re.IGNORECASE,
)
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalize(name: str | None) -> str:
    """The comparable form of a name: what differs between exports (case, accents, credits, punctuation) removed."""
    if not name:
        return ""
    s = unicodedata.normalize("NFKD", name)
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = s.casefold().replace("&", " and ")
    stripped = _FEAT.sub("", s)
    s = _PUNCT.sub(" ", stripped if stripped.strip() else s).strip()
    return s or name.strip().casefold()


def name_key(first: str | None, second: str | None) -> str:
    """Key of an (artist, track) — or (show, episode), (audiobook, chapter) — pair."""
    return normalize(first) + "\x1f" + normalize(second)


def surrogate_id(kind: str, first: str | None, second: str | None) -> str:
    """Stable 22-character id for an item known only by its names (same form as sources.catalog.surrogate)."""
    return "x" + hashlib.md5(f"{kind}:{name_key(first, second)}".encode()).hexdigest()[:21]


def is_surrogate(track_id: str | None) -> bool:
    return bool(track_id) and len(track_id) == 22 and track_id[0] == "x" and all(
        c in "0123456789abcdef" for c in track_id[1:])


def keys_of(first: Iterable[str | None], second: Iterable[str | None]) -> list[str]:
    """name_key for many rows, normalising each distinct pair once."""
    cache: dict[tuple[str | None, str | None], str] = {}
    out = []
    for a, b in zip(first, second, strict=True):
        k = cache.get((a, b))
        if k is None:
            k = cache[(a, b)] = name_key(a, b)
        out.append(k)
    return out


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
            t = pq.read_table(lake.path(rel), filesystem=lake.fs)
        except (OSError, pa.ArrowInvalid):
            continue
        cols = [c for c in columns if c in t.column_names]
        if len(cols) == len(columns):
            tables.append(t.select(cols))
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="default")


def lake_resolver(lake: Lake) -> Resolver:
    """A resolver over everything the lake knows: plays of every user, libraries, playlists, catalogues."""
    r = Resolver()
    plays = _read_columns(lake, lake.glob(f"{zones.curated_table_dir('plays')}/user_key=*/data.parquet"),
                          ["track_id", "artist_name", "track_name", "episode_id", "show_name", "episode_name"])
    if plays is not None:
        r.add_plays(plays)
    for table in ("saved_tracks", "playlist_items"):
        t = _read_columns(lake, lake.glob(f"{zones.curated_table_dir(table)}/user_key=*/data.parquet"),
                          ["track_id", "artist_name", "track_name"])
        if t is not None:
            r.add_named_tracks(t)
    cat = _read_columns(lake, [zones.curated_file("catalog_tracks")] if lake.exists(
        zones.curated_file("catalog_tracks")) else [], ["track_id", "artist_name", "track_name"])
    if cat is not None:
        r.add_named_tracks(cat)
    return r
