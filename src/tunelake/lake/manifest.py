"""The manifest: which batches exist, which users are known, and the cursors of incremental sources.

One small JSON document per entry (not one growing file), so that writing an entry is a single atomic put on any
filesystem, Azure Blob included. A batch exists once its entry is written; everything it refers to is written
before it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tunelake.lake import zones
from tunelake.lake.store import Lake


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def user_key_for(handle: str) -> int:
    """Stable pseudonymous 63-bit key for a workspace handle (same handle, same key, in any workspace)."""
    return int.from_bytes(hashlib.sha256(b"tunelake-user:" + handle.encode()).digest()[:8], "big") >> 1


def batch_id_for(source: str, handle: str, content_hash: str) -> str:
    """Same source, user and content → same batch id: importing the same bytes twice is recognised by this."""
    return hashlib.sha256(f"{source}|{handle}|{content_hash}".encode()).hexdigest()[:24]


@dataclass
class Batch:
    batch_id: str
    source: str  # extended | account | library | playlist | api | catalog
    handle: str
    user_key: int
    name: str  # file name inside the import (or API endpoint)
    content_hash: str
    raw_path: str
    imported_at: str
    bytes: int
    file_format: str = ""
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    merged: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    excluded: int = 0  # accepted but excluded from stream counts (episodes, audiobooks, unknown items)
    unknown_fields: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


def find_batch(lake: Lake, batch_id: str) -> Batch | None:
    rel = zones.batch_entry(batch_id)
    if not lake.exists(rel):
        return None
    return Batch(**lake.read_json(rel))


def commit_batch(lake: Lake, batch: Batch) -> None:
    lake.write_json(zones.batch_entry(batch.batch_id), asdict(batch))


def list_batches(lake: Lake, source: str | None = None, handle: str | None = None) -> list[Batch]:
    out = []
    for name in lake.listdir(f"{zones.MANIFEST}/batches"):
        if not name.endswith(".json") or name.startswith("."):
            continue
        b = Batch(**lake.read_json(f"{zones.MANIFEST}/batches/{name}"))
        if (source is None or b.source == source) and (handle is None or b.handle == handle):
            out.append(b)
    return sorted(out, key=lambda b: (b.imported_at, b.batch_id))


def register_user(lake: Lake, handle: str, timezone: str | None = None) -> dict[str, Any]:
    """Create or update a user entry; a timezone given now overrides the earlier one."""
    zones.check_handle(handle)
    rel = zones.user_entry(handle)
    entry = lake.read_json(rel) if lake.exists(rel) else {
        "handle": handle, "user_key": user_key_for(handle), "timezone": None, "created_at": utcnow().isoformat()
    }
    if timezone and entry.get("timezone") != timezone:
        entry["timezone"] = timezone
        lake.write_json(rel, entry)
    elif not lake.exists(rel):
        lake.write_json(rel, entry)
    return entry


def list_users(lake: Lake) -> list[dict[str, Any]]:
    return [
        lake.read_json(f"{zones.MANIFEST}/users/{name}")
        for name in lake.listdir(f"{zones.MANIFEST}/users")
        if name.endswith(".json") and not name.startswith(".")
    ]


def get_cursor(lake: Lake, name: str) -> Any:
    rel = zones.cursor_entry(name)
    return lake.read_json(rel)["value"] if lake.exists(rel) else None


def set_cursor(lake: Lake, name: str, value: Any) -> None:
    lake.write_json(zones.cursor_entry(name), {"value": value, "updated_at": utcnow().isoformat()})


def fingerprint(lake: Lake) -> str:
    """Hash of every committed batch id: the warehouse is rebuilt only when this changes."""
    ids = sorted(n for n in lake.listdir(f"{zones.MANIFEST}/batches") if n.endswith(".json") and not n.startswith("."))
    users = [(u["handle"], u.get("timezone")) for u in sorted(list_users(lake), key=lambda u: u["handle"])]
    return hashlib.sha256(repr((ids, users)).encode()).hexdigest()[:24]
