"""Pulling a logged-in listener's Web API data into the lake: recently played (incrementally, with the `after`
cursor), top items, saved tracks, playlists and their profile — raw responses with an envelope, curated rows,
manifest entries and cursors, each page or snapshot one commit.

An API play of the same listener and track as a play already in the lake from an export is the same playback by
the rule of `curate.overlap`: it is not added again and is counted as `merged`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tunelake.curate import gaps, overlap
from tunelake.curate import plays as curated_plays
from tunelake.curate.enrich import enrich
from tunelake.curate.ingest import write_users_table
from tunelake.errors import ConfigError
from tunelake.lake import manifest, zones
from tunelake.lake.manifest import Batch, utcnow
from tunelake.lake.store import Lake
from tunelake.sources.spotify.client import RetryPolicy, SpotifyClient
from tunelake.sources.spotify.playlist import paged
from tunelake.sources.spotify.rows import SOURCE, TIME_RANGES, api_time, play_rows
from tunelake.sources.types import PLAYLIST_ITEMS, SAVED_TRACKS, SCROBBLE_SOURCES, TOP_ITEMS, conform
from tunelake.workspace import Workspace

WHAT_ALL = ("profile", "recent", "top", "saved", "playlists", "enrich")
RECENT_LIMIT = 50  # the most recently-played returns, and all it keeps


@dataclass
class _Raw:
    batch_id: str
    raw_path: str
    content_hash: str
    size: int
    is_new: bool


def _store_raw(lake: Lake, handle: str, endpoint: str, params: dict[str, Any], payload: Any, now: datetime) -> _Raw:

    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    content_hash = hashlib.sha256(data).hexdigest()
    batch_id = manifest.batch_id_for(SOURCE, handle, f"{endpoint}|{content_hash}")
    existing = manifest.find_batch(lake, batch_id)
    if existing is not None:
        return _Raw(batch_id, existing.raw_path, content_hash, len(data), False)
    raw = zones.raw_path(SOURCE, handle, now, batch_id, ".json")
    lake.write_bytes(raw, data)
    lake.write_json(
        zones.envelope_path(raw),
        {
            "source": SOURCE,
            "endpoint": endpoint,
            "params": params,
            "user": handle,
            "fetched_at": now.isoformat(),
            "sha256": content_hash,
            "bytes": len(data),
        },
    )
    return _Raw(batch_id, raw, content_hash, len(data), True)


def _commit(lake: Lake, raw: _Raw, handle: str, user_key: int, endpoint: str, now: datetime, **counts: Any) -> None:
    if not raw.is_new:
        return
    manifest.commit_batch(
        lake,
        Batch(
            batch_id=raw.batch_id,
            source=SOURCE,
            handle=handle,
            user_key=user_key,
            name=endpoint,
            content_hash=raw.content_hash,
            raw_path=raw.raw_path,
            imported_at=now.isoformat(),
            bytes=raw.size,
            file_format="spotify-web-api",
            **counts,
        ),
    )


def export_matches(existing: pa.Table, incoming: pa.Table, tolerance_s: float) -> list[bool]:
    """For each incoming API play: is it a playback an export already holds (the `curate.overlap` rule)? Stored
    API plays are not candidates (API plays among themselves are deduplicated by their playback id), nor are
    account-data rows (matched by `merge_plays` with the account window)."""
    if not incoming.num_rows or not existing.num_rows:
        return [False] * incoming.num_rows
    # Scrobbles are not exports: a stored scrobble gives way to the API row (curate.scrobble_merge), not the reverse.
    ex_mask = pc.fill_null(pc.invert(pc.is_in(existing["source"], pa.array([SOURCE, "account",
                                                                            *SCROBBLE_SOURCES]))), False)
    ex_mask = pc.and_(ex_mask, pc.is_valid(existing["track_id"]))
    ex = existing.filter(ex_mask)
    api = overlap.api_inputs(pa.array(range(incoming.num_rows), pa.int64()),
                             pc.cast(incoming["ended_at"], pa.int64()), incoming["track_id"])
    other = overlap.api_inputs(pa.array(range(ex.num_rows), pa.int64()), pc.cast(ex["ended_at"], pa.int64()),
                               ex["track_id"])
    hit = {a for a, _ in overlap.api_pairs(api, other, tolerance_s)}
    return [i in hit for i in range(incoming.num_rows)]


def _replace_rows(
    lake: Lake, table: str, user_key: int, schema: pa.Schema, keep: Callable[[pa.Table], pa.Array], new: pa.Table
) -> None:
    old = curated_plays.read_user_table(lake, table, user_key, schema)
    kept = old.filter(keep(old)) if old.num_rows else old
    lake.write_parquet(
        zones.curated_user_file(table, user_key), pa.concat_tables([kept, conform(new, schema)])
    )


def _not_api(t: pa.Table) -> pa.Array:
    return pc.invert(pc.fill_null(pc.equal(t["source"], SOURCE), False))


@dataclass
class PullResult:
    user: str
    pages: int = 0
    plays_read: int = 0
    plays_new: int = 0
    duplicates: int = 0
    merged: int = 0  # API plays that are the same playback as an export play already in the lake
    top_items: int = 0
    saved_tracks: int = 0
    playlists: int = 0
    playlist_items: int = 0
    enriched: dict[str, int] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    cursor: int | None = None
    calls: dict[str, int] = field(default_factory=dict)
    gaps: list[dict[str, Any]] = field(default_factory=list)  # windows this pull found may have been lost

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recent_cursor_name(handle: str) -> str:
    return f"api-recently-played-{handle}"


def login(ws: Workspace, handle: str, **kwargs: Any) -> dict[str, Any]:
    """Log a listener in to Spotify (`sources.spotify.login.login`, same arguments) and register them in the lake."""
    from tunelake.sources.spotify.login import login as spotify_login

    info = spotify_login(ws, handle, **kwargs)
    with ws.writing(command=f"auth login --user {handle}"), ws.lake.transaction(f"login {handle}"):
        manifest.register_user(ws.lake, handle)
        write_users_table(ws.lake)
    return info


def pull(
    ws: Workspace,
    handle: str,
    what: Iterable[str] = WHAT_ALL,
    *,
    policy: RetryPolicy | None = None,
    page_hook: Callable[[int], None] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PullResult:
    """Pull a logged-in user's data from the API into the lake (raw → curated), incrementally where possible."""
    what = list(what)
    unknown = set(what) - set(WHAT_ALL)
    if unknown:
        raise ConfigError(
            f"unknown --what item(s): {', '.join(sorted(unknown))}", hint=f"choose from {','.join(WHAT_ALL)}"
        )
    zones.check_handle(handle)
    client = SpotifyClient(ws, handle, policy)
    with ws.writing(command=f"pull --user {handle}"):
        return _pull(ws, client, handle, what, page_hook, progress)


def _pull(ws: Workspace, client: SpotifyClient, handle: str, what: list[str],
          page_hook: Callable[[int], None] | None, progress: Callable[[int, int, str], None] | None) -> PullResult:
    """`pull` under the workspace lock. Each recently-played page is one commit (its raw response, curated rows,
    manifest entry and the cursor past it); each snapshot (top items, saved tracks, playlists, enrichment) is one
    commit of all its pages, so a pull stopped at any point keeps exactly what it finished."""
    lake = ws.lake
    if lake.exists(zones.user_entry(handle)):  # a known listener: nothing to register (the collector's case)
        user_key = manifest.user_key_for(handle)
    else:
        with lake.transaction(f"pull {handle}: user"):
            user_key = manifest.register_user(lake, handle)["user_key"]
            write_users_table(lake)  # the curated users table mirrors the manifest (dim_user)
    result = PullResult(handle)
    seen_tracks: dict[str, dict[str, Any]] = {}
    top_artists: dict[str, dict[str, Any]] = {}
    for step, name in enumerate(what):
        if progress:
            progress(step, len(what), name)
        if name == "recent":
            _pull_recent(ws, client, lake, handle, user_key, result, seen_tracks, page_hook)
            continue
        with lake.transaction(f"pull {handle}: {name}"):
            if name == "profile":
                me = client.call("me")
                now = utcnow()
                raw = _store_raw(lake, handle, "me", {}, me, now)
                _commit(lake, raw, handle, user_key, "me", now)
            elif name == "top":
                _pull_top(client, lake, handle, user_key, result, seen_tracks, top_artists)
            elif name == "saved":
                _pull_saved(client, lake, handle, user_key, result, seen_tracks)
            elif name == "playlists":
                _pull_playlists(client, lake, handle, user_key, result, seen_tracks)
            elif name == "enrich":
                result.enriched = enrich(client, lake, user_key, result.unavailable, seen_tracks, top_artists)
    if progress:
        progress(len(what), len(what), "done")
    result.calls = dict(client.stats)
    return result


def _pull_recent(
    ws: Workspace,
    client: SpotifyClient,
    lake: Lake,
    handle: str,
    user_key: int,
    result: PullResult,
    seen: dict[str, dict[str, Any]],
    page_hook: Callable[[int], None] | None,
) -> None:
    name = recent_cursor_name(handle)
    after = manifest.get_cursor(lake, name) or 0
    first = True
    while True:
        page = client.call("current_user_recently_played", limit=RECENT_LIMIT, after=after)
        items = page.get("items") or []
        if not items:
            break
        with lake.transaction(f"pull {handle}: recently-played after {after}"):
            if first:  # only the answer to the cursor itself can show plays lost before it
                gap = gaps.gap_before(lake, handle, user_key, after, items, page, RECENT_LIMIT, _played_ms)
                if gap is not None:
                    result.gaps.append(gap.as_dict())
            after = _recent_page(ws, lake, handle, user_key, result, seen, page, items, after)
        first = False
        if page_hook:
            page_hook(result.pages)
        if not page.get("next"):
            break


def _played_ms(played_at: str) -> int:
    return int(api_time(played_at).replace(tzinfo=UTC).timestamp() * 1000)


def _recent_page(ws: Workspace, lake: Lake, handle: str, user_key: int, result: PullResult,
                 seen: dict[str, dict[str, Any]], page: dict[str, Any], items: list[dict[str, Any]],
                 after: int) -> int:
    """One recently-played page into the lake (inside the caller's transaction); returns the new cursor."""
    name = recent_cursor_name(handle)
    now = utcnow()
    raw = _store_raw(lake, handle, "me/player/recently-played", {"after": after, "limit": 50}, page, now)
    for item in items:
        if (item.get("track") or {}).get("id"):
            seen[item["track"]["id"]] = item["track"]
    rows = play_rows(items, user_key, raw.batch_id)
    existing = curated_plays.read_user_plays(lake, user_key)
    same = export_matches(existing, rows, ws.settings.overlap_tolerance_s)
    merged = sum(same)
    fresh = rows.filter(pa.array([not s for s in same], pa.bool_()))
    dups = 0
    if fresh.num_rows:
        m = curated_plays.merge_plays(lake, user_key, fresh, tolerance_s=ws.settings.overlap_tolerance_s)
        dups = m.duplicates_by_batch.get(raw.batch_id, 0)
        merged += m.merged_by_batch.get(raw.batch_id, 0)  # same playback as an account-data row
    new = rows.num_rows - dups - merged
    _commit(
        lake,
        raw,
        handle,
        user_key,
        "me/player/recently-played",
        now,
        read=len(items),
        accepted=new,
        duplicates=dups,
        merged=merged,
    )
    result.pages += 1
    result.plays_read += len(items)
    result.plays_new += new
    result.duplicates += dups
    result.merged += merged
    cursors = page.get("cursors") or {}
    newest = int(cursors.get("after") or max(_played_ms(i["played_at"]) for i in items))
    # The cursor moves in the same commit as the data it covers.
    manifest.set_cursor(lake, name, newest)
    result.cursor = newest
    return newest


def _pull_top(
    client: SpotifyClient,
    lake: Lake,
    handle: str,
    user_key: int,
    result: PullResult,
    seen: dict[str, dict[str, Any]],
    top_artists: dict[str, dict[str, Any]],
) -> None:
    today = utcnow().date()
    cols: dict[str, list[Any]] = {k: [] for k in TOP_ITEMS.names}
    raws = []
    for kind, method in (("artist", "current_user_top_artists"), ("track", "current_user_top_tracks")):
        for tr in TIME_RANGES:
            page = client.call(method, limit=50, offset=0, time_range=tr)
            _keep_page(lake, handle, raws, f"me/top/{kind}s", {"time_range": tr, "limit": 50}, page)
            for rank, obj in enumerate(page.get("items") or [], start=1):
                if not obj or not obj.get("id"):
                    continue
                (seen if kind == "track" else top_artists)[obj["id"]] = obj
                for k, v in (
                    ("user_key", user_key),
                    ("snapshot_date", today),
                    ("time_range", tr),
                    ("item_type", kind),
                    ("rank", rank),
                    ("item_id", obj["id"]),
                    ("item_name", obj.get("name")),
                ):
                    cols[k].append(v)
    table = pa.table(cols, schema=TOP_ITEMS)
    _replace_rows(
        lake,
        "top_items",
        user_key,
        TOP_ITEMS,
        lambda t: pc.not_equal(t["snapshot_date"], pa.scalar(today, pa.date32())),
        table,
    )
    _commit_pages(lake, handle, user_key, raws)
    result.top_items = table.num_rows


def _keep_page(
    lake: Lake, handle: str, raws: list[tuple[_Raw, str, datetime, int]], endpoint: str, params: dict[str, Any],
    page: dict[str, Any],
) -> _Raw:
    """Store a snapshot page's raw JSON now, and note it in `raws` for `_commit_pages`.

    The manifest entry waits: a page counts as imported only once the curated table holding its rows is written,
    so a pull that fails before that leaves no page marked as imported.
    """
    now = utcnow()
    raw = _store_raw(lake, handle, endpoint, params, page, now)
    raws.append((raw, endpoint, now, len(page.get("items") or [])))
    return raw


def _commit_pages(lake: Lake, handle: str, user_key: int, raws: list[tuple[_Raw, str, datetime, int]]) -> None:
    """Commit the pages `_keep_page` stored, after their rows are in the curated table; each item is a row."""
    for raw, endpoint, now, n in raws:
        _commit(lake, raw, handle, user_key, endpoint, now, read=n, accepted=n)


def _pull_saved(
    client: SpotifyClient, lake: Lake, handle: str, user_key: int, result: PullResult, seen: dict[str, dict[str, Any]]
) -> None:
    rows: list[dict[str, Any]] = []
    raws = []
    for page in paged(client, client.call("current_user_saved_tracks", limit=50)):
        raw = _keep_page(lake, handle, raws, "me/tracks", {"offset": page.get("offset")}, page)
        for item in page.get("items") or []:
            track = item.get("track") or {}
            if not track.get("id"):
                continue
            seen[track["id"]] = track
            rows.append(
                {
                    "user_key": user_key,
                    "track_id": track["id"],
                    "track_name": track.get("name"),
                    "artist_name": ((track.get("artists") or [{}])[0]).get("name"),
                    "album_name": (track.get("album") or {}).get("name"),
                    "saved_at": api_time(item.get("added_at")),
                    "source": SOURCE,
                    "item_type": "track",
                    "item_id": track["id"],
                    "item_name": track.get("name"),
                    "batch_id": raw.batch_id,
                }
            )
    table = pa.Table.from_pylist(rows, schema=SAVED_TRACKS)
    _replace_rows(lake, "saved_tracks", user_key, SAVED_TRACKS, _not_api, table)
    _commit_pages(lake, handle, user_key, raws)
    result.saved_tracks = table.num_rows


def _pull_playlists(
    client: SpotifyClient, lake: Lake, handle: str, user_key: int, result: PullResult, seen: dict[str, dict[str, Any]]
) -> None:
    rows: list[dict[str, Any]] = []
    raws = []
    for page in paged(client, client.call("current_user_playlists", limit=50)):
        _keep_page(lake, handle, raws, "me/playlists", {"offset": page.get("offset")}, page)
        for pl in page.get("items") or []:
            if not pl or not pl.get("id"):
                continue
            result.playlists += 1
            position = 0
            first = client.call("playlist_items", pl["id"], limit=100, additional_types=("track",))
            for ipage in paged(client, first):
                endpoint = f"playlists/{pl['id']}/items"
                raw = _keep_page(lake, handle, raws, endpoint, {"offset": ipage.get("offset")}, ipage)
                for item in ipage.get("items") or []:
                    obj = item.get("item") or item.get("track") or {}
                    kind = obj.get("type") or "track"
                    if kind == "track" and obj.get("id"):
                        seen[obj["id"]] = obj
                    rows.append(
                        {
                            "user_key": user_key,
                            "playlist_id": pl["id"],
                            "playlist_name": pl.get("name"),
                            "position": position,
                            "item_type": kind,
                            "track_id": obj.get("id") if kind == "track" else None,
                            "track_name": obj.get("name"),
                            "artist_name": ((obj.get("artists") or [{}])[0]).get("name"),
                            "album_name": (obj.get("album") or {}).get("name"),
                            "added_at": api_time(item.get("added_at")),
                            "source": SOURCE,
                            "item_id": obj.get("id"),
                            "batch_id": raw.batch_id,
                        }
                    )
                    position += 1
    table = pa.Table.from_pylist(rows, schema=PLAYLIST_ITEMS)
    _replace_rows(lake, "playlist_items", user_key, PLAYLIST_ITEMS, _not_api, table)
    _commit_pages(lake, handle, user_key, raws)
    result.playlist_items = table.num_rows
