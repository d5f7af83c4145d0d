"""Import: files → raw zone (as received, with an envelope) → curated zone, with a summary that adds up.

For every file: read = accepted + duplicates + quarantined. Nothing is dropped without being counted, and the
same bytes imported again are recognised by their hash and add nothing.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tunelake import duck
from tunelake.curate import library, resolve
from tunelake.curate import plays as curated_plays
from tunelake.curate.lookahead import lookahead
from tunelake.curate.privacy import PII_COLUMNS, apply_pii_policy, workspace_salt
from tunelake.curate.raw import compress_raw, display_origin, store_raw, write_quarantine
from tunelake.errors import InputError
from tunelake.lake import manifest, zones
from tunelake.lake.manifest import Batch, utcnow
from tunelake.lake.store import Lake
from tunelake.sources import library as library_files
from tunelake.sources import names
from tunelake.sources.account import parse_account
from tunelake.sources.export import PARSERS, ExportFile, Parsed, find_export_files, source_of_kind
from tunelake.sources.extended_parts import parse_in_parts
from tunelake.sources.lastfm import parse_lastfm_csv, parse_lastfm_json
from tunelake.sources.listenbrainz import parse_listenbrainz
from tunelake.sources.maloja import parse_maloja
from tunelake.sources.types import NAME_ONLY_SOURCES, SCROBBLE_SOURCES, USERS
from tunelake.workspace import Workspace

Progress = Callable[[int, int, str], None]

ALL_PARSERS: dict[str, Callable[..., Parsed]] = {
    **PARSERS,
    "account_music": parse_account,
    "account_podcast": parse_account,
    "account_audiobook": parse_account,
    "library": library_files.parse_library,
    "playlist": library_files.parse_playlists,
    "listenbrainz": parse_listenbrainz,
    "lastfm_json": parse_lastfm_json,
    "lastfm_csv": parse_lastfm_csv,
    "maloja": parse_maloja,
}
TABLE_OF_KIND = {"library": "saved_tracks", "playlist": "playlist_items"}  # every other kind → plays


@dataclass
class FileResult:
    origin: str
    kind: str
    status: str  # imported | already imported | failed | not supported
    batch_id: str = ""
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    merged: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    excluded: int = 0
    unknown_fields: list[str] = field(default_factory=list)
    error: str = ""
    table: str = ""  # curated table the rows went to: plays | saved_tracks | playlist_items
    to_resolve: int = 0  # rows known only by names (account plays, library/playlist tracks without URI)
    resolved: int = 0  # … of which matched a known Spotify id (the rest got a stable surrogate id)
    ms_played: int = 0  # of the file's valid play rows (accepted + duplicates + merged)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class ImportSummary:
    handle: str
    files: list[FileResult] = field(default_factory=list)
    ms_played: int = 0  # of valid play rows read (accepted + duplicates + merged)
    replaced: int = 0  # stored account-data plays replaced by the same playback from extended history
    upgraded: int = 0  # stored account-data plays whose surrogate id was resolved thanks to this import

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def quarantined(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.files:
            for reason, n in f.quarantined.items():
                out[reason] = out.get(reason, 0) + n
        return out

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.status == "failed"]

    @property
    def resolution_rate(self) -> float | None:
        """Share of name-only rows (account plays, URI-less library items) resolved to a Spotify id."""
        n = self.total("to_resolve")
        return round(self.total("resolved") / n, 4) if n else None

    def by_table(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            if not f.table:
                continue
            t = out.setdefault(f.table, {"read": 0, "accepted": 0, "duplicates": 0, "merged": 0, "quarantined": 0})
            t["read"] += f.read
            t["accepted"] += f.accepted
            t["duplicates"] += f.duplicates
            t["merged"] += f.merged
            t["quarantined"] += f.quarantined_total
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.handle,
            "files": len(self.files),
            "read": self.total("read"),
            "accepted": self.total("accepted"),
            "duplicates": self.total("duplicates"),
            "merged": self.total("merged"),
            "quarantined": self.quarantined,
            "excluded_from_streams": self.total("excluded"),
            "already_imported": sum(1 for f in self.files if f.status == "already imported"),
            "not_supported": sum(1 for f in self.files if f.status == "not supported"),
            "by_table": self.by_table(),
            "ms_played": self.ms_played,
            "to_resolve": self.total("to_resolve"),
            "resolved": self.total("resolved"),
            "resolution_rate": self.resolution_rate,
            "replaced_account_rows": self.replaced,
            "upgraded_account_rows": self.upgraded,
            "unknown_fields": sorted({u for f in self.files for u in f.unknown_fields}),
            "failed": self.errors,
        }


def _pii(rows: pa.Table, policy: str, salt: bytes | None) -> pa.Table:
    for col in PII_COLUMNS:
        if col in rows.column_names:
            idx = rows.column_names.index(col)
            rows = rows.set_column(idx, col, apply_pii_policy(rows[col].to_pylist(), policy, salt)
                                   if policy == "pseudonymize" else pa.nulls(rows.num_rows, pa.string()))
    return rows


# Fields of a received record that identify a person: what `--pii` decides for curated rows decides for
# quarantined records too (the raw zone keeps the original).
def write_users_table(lake: Lake, user: dict[str, Any] | None = None) -> None:
    """The curated users table mirrors the manifest's user entries (handle, key, configured timezone).

    With `user`, the table is rewritten only when that user is missing or changed: listing every user entry on
    every import would make importing many users quadratic."""
    rel = zones.curated_file("users")
    if user is not None and lake.exists(rel):
        t = lake.read_parquet(rel)
        if {"user_key": user["user_key"], "handle": user["handle"], "timezone": user.get("timezone")} in t.to_pylist():
            return
    users = sorted(manifest.list_users(lake), key=lambda u: u["handle"])
    table = pa.table(
        {
            "user_key": pa.array([u["user_key"] for u in users], pa.int64()),
            "handle": pa.array([u["handle"] for u in users], pa.string()),
            "timezone": pa.array([u.get("timezone") for u in users], pa.string()),
        },
        schema=USERS,
    )
    lake.write_parquet(zones.curated_file("users"), table)


def _resolve_pending(lake: Lake, pending: list[tuple[Batch, FileResult, Parsed]]) -> resolve.Resolver | None:
    """Fill track/episode ids of name-only rows from every known track (lake + this import)."""
    def needs(result: FileResult, rows: pa.Table) -> bool:
        if result.table == "plays":
            return bool(rows.num_rows) and pc.any(_name_only(rows)).as_py()
        return bool(rows.num_rows) and pc.any(pc.is_null(rows["item_id"])).as_py()

    if not any(needs(r, p.rows) for _, r, p in pending):
        return None
    resolver = resolve.lake_resolver(lake)
    for _, result, parsed in pending:  # ids that come with this import: extended plays, library/playlist URIs
        if result.table == "plays":
            resolver.add_plays(parsed.rows)
        else:
            resolver.add_named_tracks(parsed.rows)
    for _, result, parsed in pending:
        rows = parsed.rows
        if not needs(result, rows):
            continue
        if result.table == "plays":
            acc = _name_only(rows)
            is_track = pc.and_(acc, pc.equal(rows["content_type"], "track"))
            is_ep = pc.and_(acc, pc.equal(rows["content_type"], "episode"))
            tids, tok = resolver.resolve_tracks(rows["artist_name"].to_pylist(), rows["track_name"].to_pylist())
            is_book = pc.and_(acc, pc.equal(rows["content_type"], "audiobook"))
            if pc.any(is_ep).as_py():  # scrobbles and most music files have none: no need to name each row
                eids, eok = resolver.resolve_episodes(rows["show_name"].to_pylist(),
                                                      rows["episode_name"].to_pylist())
            else:
                eids, eok = pa.nulls(rows.num_rows, pa.string()), pa.repeat(False, rows.num_rows)
            bids = (pa.array([names.surrogate_id("chapter", b, c) for b, c in zip(
                rows["audiobook_title"].to_pylist(), rows["chapter_title"].to_pylist(), strict=True)], pa.string())
                if pc.any(is_book).as_py() else pa.nulls(rows.num_rows, pa.string()))
            rows = rows.set_column(rows.column_names.index("track_id"), "track_id",
                                   pc.if_else(is_track, tids, rows["track_id"]))
            for name, col, mask in (("episode_id", eids, is_ep), ("chapter_id", bids, is_book)):
                base = rows[name] if name in rows.column_names else pa.nulls(rows.num_rows, pa.string())
                new = pc.if_else(mask, col, base)
                rows = (rows.set_column(rows.column_names.index(name), name, new) if name in rows.column_names
                        else rows.append_column(name, new))
            result.to_resolve = pc.sum(pc.cast(pc.or_(is_track, is_ep), pa.int64())).as_py() or 0
            result.resolved = (pc.sum(pc.cast(pc.and_(is_track, tok), pa.int64())).as_py() or 0) + (
                pc.sum(pc.cast(pc.and_(is_ep, eok), pa.int64())).as_py() or 0)
        else:
            todo = pc.and_(pc.is_null(rows["item_id"]), pc.is_in(rows["item_type"], pa.array(["track",
                                                                                             "banned_track"])))
            tids, tok = resolver.resolve_tracks(rows["artist_name"].to_pylist(), rows["track_name"].to_pylist())
            item_id = pc.if_else(todo, tids, rows["item_id"])
            rows = rows.set_column(rows.column_names.index("item_id"), "item_id", item_id)
            is_tr = pc.equal(rows["item_type"], "track")
            rows = rows.set_column(rows.column_names.index("track_id"), "track_id",
                                   pc.if_else(is_tr, item_id, rows["track_id"]))
            result.to_resolve = pc.sum(pc.cast(todo, pa.int64())).as_py() or 0
            result.resolved = pc.sum(pc.cast(pc.and_(todo, tok), pa.int64())).as_py() or 0
        parsed.rows = rows
    return resolver


def _name_only(rows: pa.Table) -> pa.Array:
    """Play rows that know their item by names only: account data, and scrobbles without a Spotify id."""
    src = rows["source"]
    scrobble = pc.and_(pc.is_in(src, pa.array(SCROBBLE_SOURCES)), pc.is_null(rows["track_id"]))
    return pc.fill_null(pc.or_(pc.equal(src, "account"), scrobble), False)


def _put(rows: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in rows.column_names:
        return rows.set_column(rows.column_names.index(name), name, values)
    return rows.append_column(name, values)


def _user_has_account_plays(lake: Lake, user_key: int) -> bool:
    """Does the user have stored rows known by names only (account data, scrobbles) that this import may
    resolve?"""
    rel = zones.curated_user_file("plays", user_key)
    if not lake.exists(rel):
        return False
    src = resolve._read_columns(lake, [rel], ["source"])
    return src is not None and pc.any(pc.is_in(src["source"], pa.array(NAME_ONLY_SOURCES))).as_py()


def import_paths(
    ws: Workspace,
    paths: list[str],
    handle: str,
    *,
    timezone: str | None = None,
    pii: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import every Spotify export file under `paths` for one user, as one commit: the raw files, curated rows,
    quarantine and manifest entries of the import become visible together, or (after a failure or a crash) not
    at all, and a retry imports exactly what a clean run would have."""
    zones.check_handle(handle)
    duck.set_import_threads(ws.settings.import_threads)
    with ws.writing(command=f"import --user {handle}"):
        lake = ws.lake
        with lake.transaction(f"import {handle}"):
            return _import_user(ws, lake, paths, handle, timezone=timezone, pii=pii, progress=progress)


def _work(parser: Callable[..., Parsed], kind: str, data: bytes, origin: str, user_key: int, compression: str,
          width: int) -> tuple[list[Callable[[], Any]], Callable[[list[Any]], tuple[Parsed, bytes]]]:
    """A file's work as pieces `lookahead` runs on its threads — the parse (a big extended-history file's in
    parts: `sources/extended_parts`) and the compression of its bytes for the raw zone — and how their results
    make (rows, stored bytes). Any error is raised where the results are taken."""
    if kind in PARSERS:
        jobs, finish = parse_in_parts(data, origin, width, user_key=user_key)
    else:
        jobs, finish = [functools.partial(parser, data, origin)], _first
    return [*jobs, functools.partial(compress_raw, data, compression)], lambda r: (finish(r[:-1]), r[-1])


def _first(results: list[Parsed]) -> Parsed:
    return results[0]


def _staged(lake: Lake, files: list[ExportFile], paths: list[str], handle: str, user_key: int, compression: str,
            summary: ImportSummary, width: int) -> Iterator[tuple[tuple[ExportFile, FileResult, tuple | None],
                                                                list[Callable[[], Any]] | None]]:
    """Each file with its result and, when it is new and readable, its bytes, hash, batch id and shown origin and
    the parse still to run (`lookahead` runs it in a thread ahead of the loop). Runs in the caller's thread: it
    reads the manifest, so files already imported are never parsed."""
    for f in files:
        result = FileResult(f.origin, f.kind, "imported", table=TABLE_OF_KIND.get(f.kind, "plays"))
        summary.files.append(result)
        parser = ALL_PARSERS.get(f.kind)
        if parser is None:
            result.status = "not supported"
            result.error = f"{f.origin}: {f.kind} files are not imported by this version"
            yield (f, result, None), None
            continue
        try:
            data = f.read()
        except InputError as exc:
            result.status, result.error = "failed", exc.one_line()
            yield (f, result, None), None
            continue
        content_hash = hashlib.sha256(data).hexdigest()
        batch_id = manifest.batch_id_for(source_of_kind(f.kind), handle, content_hash)
        result.batch_id = batch_id
        if manifest.find_batch(lake, batch_id) is not None:
            result.status = "already imported"
            yield (f, result, None), None
            continue
        jobs, finish = _work(parser, f.kind, data, f.origin, user_key, compression, width)
        yield (f, result, (data, content_hash, batch_id, display_origin(f.origin, paths), finish)), jobs
        del data, jobs, finish


def _import_user(
    ws: Workspace,
    lake: Lake,
    paths: list[str],
    handle: str,
    *,
    timezone: str | None = None,
    pii: str | None = None,
    progress: Progress | None = None,
    shared_writes: bool = True,
) -> ImportSummary:
    """The import of one user inside the caller's lock and transaction.

    `shared_writes=False` leaves out the two lake-wide files every import touches (the users table and the name
    index): `import_many` runs many users in parallel that way and writes both once at the end."""
    policy = pii or ws.settings.pii
    salt = workspace_salt(ws.secrets_dir) if policy == "pseudonymize" else None
    user = manifest.register_user(lake, handle, timezone)
    user_key = user["user_key"]
    files = find_export_files(paths)
    summary = ImportSummary(handle)
    total_bytes = sum(f.size for f in files) or 1
    done = 0
    pending: list[tuple[Batch, FileResult, Parsed]] = []
    now = utcnow()

    width = duck.import_threads()
    staged_files = _staged(lake, files, paths, handle, user_key, ws.settings.raw_compression, summary, width)
    for (f, result, staged), parse in lookahead(staged_files, width):
        if staged is not None:
            data, content_hash, batch_id, origin, finish = staged
            source = source_of_kind(f.kind)
            try:
                parsed, stored = finish(parse())
            except InputError as exc:
                result.status = "failed"
                result.error = exc.one_line()
                message = exc.one_line().replace(f.origin, origin)
                write_quarantine(lake, source, handle, batch_id, origin,
                                  [{"record_no": None, "reason": "invalid_file", "message": message}])
            else:
                raw = store_raw(lake, f, data, source, handle, batch_id, content_hash, now, ws.settings.raw_compression,
                                origin=origin, stored=stored)
                del stored
                rows = parsed.rows
                # pa.repeat, not a Python list of n values: 45 ms per 100k rows less
                rows = _put(rows, "user_key", pa.repeat(pa.scalar(user_key, pa.int64()), rows.num_rows))
                rows = _put(rows, "batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), rows.num_rows))
                if result.table == "plays":
                    rows = _pii(rows, policy, salt)
                    result.ms_played = pc.sum(rows["ms_played"]).as_py() or 0
                parsed.rows = rows
                if parsed.quarantine:
                    write_quarantine(lake, source, handle, batch_id, origin, parsed.quarantine, policy, salt)
                result.read = parsed.read
                result.quarantined = parsed.quarantine_counts()
                result.unknown_fields = sorted(parsed.unknown_fields)
                result.details = dict(parsed.details)
                batch = Batch(
                    batch_id=batch_id, source=source, handle=handle, user_key=user_key, name=f.name,
                    content_hash=content_hash, raw_path=raw, imported_at=now.isoformat(), bytes=len(data),
                    file_format=parsed.file_format, read=parsed.read, quarantined=result.quarantined,
                    unknown_fields=result.unknown_fields,
                )
                pending.append((batch, result, parsed))
            del data, staged, finish
        done += f.size
        if progress:
            progress(done, total_bytes, f.name)

    resolver = _resolve_pending(lake, pending)
    plays = [(b, r, p) for b, r, p in pending if r.table == "plays"]
    if plays:
        incoming = pa.concat_tables([p.rows for _, _, p in plays], promote_options="default")
        has_account = pc.any(pc.equal(incoming["source"], "account")).as_py() or False
        if has_account:
            acc = pc.fill_null(pc.equal(incoming["source"], "account"), False)
            ids = curated_plays.account_play_ids(incoming)
            known = incoming["play_id"] if "play_id" in incoming.column_names else pa.scalar(None, pa.string())
            incoming = _put(incoming, "play_id", pc.if_else(acc, ids, known))
        scrobbles = pc.fill_null(pc.is_in(incoming["source"], pa.array(SCROBBLE_SOURCES)), False)
        if pc.any(scrobbles).as_py():
            known = incoming["play_id"] if "play_id" in incoming.column_names else pa.scalar(None, pa.string())
            incoming = _put(incoming, "play_id", pc.if_else(scrobbles, curated_plays.scrobble_play_ids(incoming),
                                                            known))
        if not has_account and _user_has_account_plays(lake, user_key):
            has_account = True
            resolver = resolver or resolve.lake_resolver(lake)
            resolver.add_plays(incoming)
        merge = curated_plays.merge_plays(
            lake, user_key, incoming, tolerance_s=ws.settings.overlap_tolerance_s if has_account else None,
            resolver=resolver, api_tolerance_s=ws.settings.overlap_tolerance_s, record_names=shared_writes,
            scrobble_tolerance_s=ws.settings.overlap_tolerance_s)
        summary.replaced += merge.replaced
        summary.upgraded += merge.upgraded
        for batch, result, parsed in plays:
            dups = merge.duplicates_by_batch.get(batch.batch_id, 0)
            merged = merge.merged_by_batch.get(batch.batch_id, 0)
            result.excluded = merge.excluded_by_batch.get(batch.batch_id, 0)
            _count(lake, batch, result, parsed.rows.num_rows, dups, merged)
            summary.ms_played += result.ms_played
    named = [p.rows for _, r, p in pending if r.table != "plays"]  # plays are recorded by merge_plays
    if named and shared_writes:  # what this import teaches about names → ids, for later imports of any user
        resolve.record_known(lake, named)
    if not shared_writes:  # import_many records what every listener taught, once, at the end
        taught = [resolve.known_items(t) for t in ([incoming] if plays else []) + named if t.num_rows]
        taught = [t for t in taught if t.num_rows]
        if taught:  # committed with the listener's rows; merged into the index by import_many's last step
            lake.write_parquet(zones.name_index_pending(user_key, lake.txn.id if lake.txn else "0"),
                               resolve.with_keys(pa.concat_tables(taught)))
    for table, merge_fn in (("saved_tracks", library.merge_saved), ("playlist_items", library.merge_playlist_items)):
        group = [(b, r, p) for b, r, p in pending if r.table == table]
        if not group:
            continue
        incoming = pa.concat_tables([p.rows for _, _, p in group], promote_options="default")
        out = merge_fn(lake, user_key, incoming)
        dups_by, stale = out if isinstance(out, tuple) else (out, 0)
        for batch, result, parsed in group:
            if stale:
                result.details["stale_playlist_rows"] = stale
            _count(lake, batch, result, parsed.rows.num_rows, dups_by.get(batch.batch_id, 0), 0)
    if shared_writes:
        write_users_table(lake, user)
    return summary


def _count(lake: Lake, batch: Batch, result: FileResult, rows: int, dups: int, merged: int) -> None:
    """Settle one file's numbers; they must add up before its batch is committed."""
    result.duplicates, result.merged = dups, merged
    result.accepted = rows - dups - merged
    batch.accepted, batch.duplicates, batch.merged, batch.excluded = (result.accepted, dups, merged,
                                                                       result.excluded)
    batch.details = {**result.details, "table": result.table, "to_resolve": result.to_resolve,
                     "resolved": result.resolved, "ms_played": result.ms_played}
    if result.read != result.accepted + dups + merged + result.quarantined_total:
        raise AssertionError(f"{result.origin}: import counts do not add up")
    manifest.commit_batch(lake, batch)


