"""Import: files → raw zone (as received, with an envelope) → curated zone, with a summary that adds up.

For every file: read = accepted + duplicates + quarantined. Nothing is dropped without being counted, and the
same bytes imported again are recognised by their hash and add nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tunelake.config import Config
from tunelake.curate import plays as curated_plays
from tunelake.curate.privacy import PII_COLUMNS, apply_pii_policy, workspace_salt
from tunelake.curate.schemas import USERS
from tunelake.errors import InputError
from tunelake.lake import manifest, zones
from tunelake.lake.manifest import Batch, utcnow
from tunelake.lake.store import Lake
from tunelake.sources.export import PARSERS, ExportFile, Parsed, find_export_files, source_of_kind

Progress = Callable[[int, int, str], None]


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

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class ImportSummary:
    handle: str
    files: list[FileResult] = field(default_factory=list)
    ms_played: int = 0  # of accepted rows

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
            "failed": self.errors,
        }


def open_lake(cfg: Config) -> Lake:
    return Lake(cfg.lake)


def _pii(rows: pa.Table, policy: str, salt: bytes | None) -> pa.Table:
    for col in PII_COLUMNS:
        if col in rows.column_names:
            idx = rows.column_names.index(col)
            rows = rows.set_column(idx, col, apply_pii_policy(rows[col].to_pylist(), policy, salt)
                                   if policy == "pseudonymize" else pa.nulls(rows.num_rows, pa.string()))
    return rows


def _write_quarantine(lake: Lake, source: str, handle: str, batch_id: str, origin: str, items: list[dict]) -> None:
    lines = b"".join(
        orjson.dumps({"file": origin, **q}, default=str) + b"\n" for q in items
    )
    lake.write_bytes(zones.quarantine_path(source, handle, batch_id), lines)


def write_users_table(lake: Lake) -> None:
    """The curated users table mirrors the manifest's user entries (handle, key, configured timezone)."""
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


def store_raw(lake: Lake, f: ExportFile, data: bytes, source: str, handle: str, batch_id: str,
              content_hash: str, when) -> str:
    """Keep the bytes exactly as received, with an envelope saying what they are."""
    suffix = ".json" if f.name.lower().endswith(".json") else ""
    raw = zones.raw_path(source, handle, when, batch_id, suffix)
    lake.write_bytes(raw, data)
    lake.write_json(zones.envelope_path(raw), {
        "source": source, "kind": f.kind, "file_name": f.name, "origin": f.origin, "user": handle,
        "imported_at": when.isoformat(), "sha256": content_hash, "bytes": len(data),
    })
    return raw


def import_paths(
    cfg: Config,
    paths: list[str],
    handle: str,
    *,
    timezone: str | None = None,
    pii: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import every listening file under `paths` for one user."""
    zones.check_handle(handle)
    lake = open_lake(cfg)
    policy = pii or cfg.pii
    salt = workspace_salt(cfg.secrets_dir) if policy == "pseudonymize" else None
    user = manifest.register_user(lake, handle, timezone)
    user_key = user["user_key"]
    files = find_export_files(paths)
    summary = ImportSummary(handle)
    total_bytes = sum(f.size for f in files) or 1
    done = 0
    pending: list[tuple[Batch, FileResult, Parsed]] = []
    now = utcnow()

    for f in files:
        result = FileResult(f.origin, f.kind, "imported")
        summary.files.append(result)
        parser = PARSERS.get(f.kind)
        if parser is None:
            result.status = "not supported"
            result.error = f"{f.origin}: {f.kind} files are not imported by this version"
            done += f.size
            if progress:
                progress(done, total_bytes, f.name)
            continue
        data = f.read()
        content_hash = hashlib.sha256(data).hexdigest()
        source = source_of_kind(f.kind)
        batch_id = manifest.batch_id_for(source, handle, content_hash)
        result.batch_id = batch_id
        if manifest.find_batch(lake, batch_id) is not None:
            result.status = "already imported"
        else:
            try:
                parsed = parser(data, f.origin)
            except InputError as exc:
                result.status = "failed"
                result.error = exc.one_line()
                _write_quarantine(lake, source, handle, batch_id, f.origin,
                                  [{"record_no": None, "reason": "invalid_file", "message": exc.one_line()}])
            else:
                raw = store_raw(lake, f, data, source, handle, batch_id, content_hash, now)
                rows = parsed.rows
                rows = rows.append_column("user_key", pa.array([user_key] * rows.num_rows, pa.int64()))
                rows = rows.append_column("batch_id", pa.array([batch_id] * rows.num_rows, pa.string()))
                rows = _pii(rows, policy, salt)
                if parsed.quarantine:
                    _write_quarantine(lake, source, handle, batch_id, f.origin, parsed.quarantine)
                result.read = parsed.read
                result.quarantined = parsed.quarantine_counts()
                result.unknown_fields = sorted(parsed.unknown_fields)
                batch = Batch(
                    batch_id=batch_id, source=source, handle=handle, user_key=user_key, name=f.name,
                    content_hash=content_hash, raw_path=raw, imported_at=now.isoformat(), bytes=len(data),
                    file_format=parsed.file_format, read=parsed.read, quarantined=result.quarantined,
                    unknown_fields=result.unknown_fields,
                )
                pending.append((batch, result, parsed.__class__(rows, parsed.read)))
        done += f.size
        if progress:
            progress(done, total_bytes, f.name)

    if pending:
        incoming = pa.concat_tables([p.rows for _, _, p in pending], promote_options="default")
        merge = curated_plays.merge_plays(lake, user_key, incoming)
        for batch, result, parsed in pending:
            dups = merge.duplicates_by_batch.get(batch.batch_id, 0)
            accepted = parsed.rows.num_rows - dups
            excluded = pc.sum(pc.not_equal(parsed.rows["content_type"], "track")).as_py() or 0
            ms = pc.sum(parsed.rows["ms_played"]).as_py() or 0
            batch.accepted, batch.duplicates, batch.excluded = accepted, dups, excluded
            result.accepted, result.duplicates, result.excluded = accepted, dups, excluded
            summary.ms_played += ms
            assert result.read == accepted + dups + result.quarantined_total, "import counts do not add up"
            manifest.commit_batch(lake, batch)
    write_users_table(lake)
    return summary
