"""Where things live inside the lake. Every path in the lake is built here and nowhere else."""

from __future__ import annotations

import re
from datetime import datetime

from tunelake.errors import InputError

RAW, CURATED, QUARANTINE, MANIFEST = "raw", "curated", "quarantine", "_manifest"
_HANDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_handle(handle: str) -> str:
    """User handles become folder names, so they are restricted to a safe alphabet."""
    if not _HANDLE.match(handle or ""):
        raise InputError(
            f"invalid user handle {handle!r}",
            field="--user",
            hint="use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return handle


def raw_path(source: str, handle: str, when: datetime, batch_id: str, suffix: str) -> str:
    return f"{RAW}/{source}/{handle}/{when:%Y}/{when:%m}/{batch_id}{suffix}"


def envelope_path(raw: str) -> str:
    return raw + ".envelope.json"


def curated_table_dir(table: str) -> str:
    return f"{CURATED}/{table}"


def curated_user_file(table: str, user_key: int) -> str:
    """Per-user partitions: an incremental step rewrites only the users that changed."""
    return f"{CURATED}/{table}/user_key={user_key}/data.parquet"


def curated_file(table: str) -> str:
    """Unpartitioned curated tables (users, catalogue)."""
    return f"{CURATED}/{table}/data.parquet"


def quarantine_path(source: str, handle: str, batch_id: str) -> str:
    return f"{QUARANTINE}/{source}/{handle}/{batch_id}.jsonl"


# The lake-wide name index (names → ids) and the contributions not merged into it yet: a listener imported in a
# worker process commits its contribution with its rows, and whoever writes the index next merges it.
NAME_INDEX = f"{CURATED}/_name_index/data.parquet"
NAME_INDEX_PENDING = f"{CURATED}/_name_index/pending"


def name_index_pending(user_key: int, token: str) -> str:
    return f"{NAME_INDEX_PENDING}/{user_key}-{token}.parquet"


def batch_entry(batch_id: str) -> str:
    return f"{MANIFEST}/batches/{batch_id}.json"


def user_entry(handle: str) -> str:
    return f"{MANIFEST}/users/{handle}.json"


def cursor_entry(name: str) -> str:
    return f"{MANIFEST}/cursors/{name}.json"


def consent_entry(handle: str) -> str:
    """What a listener agreed to (e.g. being compared with another listener): one small document each."""
    return f"{MANIFEST}/consent/{handle}.json"
