"""Personal fields: dropped by default, or kept as salted hashes with a per-workspace secret salt."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import pyarrow as pa

from tunelake.settings import private_dir

PII_COLUMNS = ("ip_addr", "user_agent", "username")


def workspace_salt(secrets_dir: Path) -> bytes:
    """Create the salt once (mode 0600) and reuse it, so pseudonyms are stable within a workspace."""
    private_dir(secrets_dir)
    path = secrets_dir / "pii_salt"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def pseudonymize(value: str | None, salt: bytes) -> str | None:
    if value is None:
        return None
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()[:20]


def apply_pii_policy(values: list[str | None], policy: str, salt: bytes | None) -> pa.Array:
    """Return the column as it may enter the curated zone under the policy."""
    if policy == "pseudonymize" and salt is not None:
        cache: dict[str, str | None] = {}
        out = []
        for v in values:
            if v is None:
                out.append(None)
            else:
                h = cache.get(v)
                if h is None:
                    h = cache[v] = pseudonymize(v, salt)
                out.append(h)
        return pa.array(out, pa.string())
    return pa.nulls(len(values), pa.string())
