"""Accounts of `tunelake serve`: users with a role, Argon2 password hashes, one-time invites.

One JSON document, `<workspace>/secrets/accounts.json`, mode 0600, replaced atomically under the workspace's
writer lock. An account's name is also its workspace handle, so the listener `ana` sees the data imported for
`ana` (user key `user_key_for("ana")`). Invites are stored as the SHA-256 of their token: a copy of the file
does not give anyone a usable link, and a token works once, before its expiry.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tunelake.errors import InputError
from tunelake.lake import zones
from tunelake.lake.manifest import user_key_for
from tunelake.settings import private_dir
from tunelake.workspace import Workspace

ROLES = ("admin", "listener")
MIN_PASSWORD = 10
FILE = "accounts.json"


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str  # Argon2id, empty until an invited listener sets a password
    created_at: str

    @property
    def user_key(self) -> int:
        return user_key_for(self.name)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _now() -> datetime:
    return datetime.now(UTC)


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2-cffi's defaults: Argon2id, RFC 9106 low-memory profile


def _path(ws: Workspace) -> Path:
    return ws.secrets_dir / FILE


def _parse(raw: bytes) -> dict[str, Any]:
    data = orjson.loads(raw)
    return {"users": data.get("users", {}), "invites": data.get("invites", {})}


def _load(ws: Workspace) -> dict[str, Any]:
    """The document, freshly read, for a writer to change (under the writer lock) and `_save`."""
    try:
        return _parse(_path(ws).read_bytes())
    except FileNotFoundError:
        return {"users": {}, "invites": {}}


_SNAPSHOTS: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _snapshot(ws: Workspace) -> dict[str, Any]:
    """The document for reading only, parsed again only when the file changed. Every signed-in request looks its
    account up, and parsing the file each time was a measurable part of a dashboard callback; `_save` replaces the
    file, so any change gives a new (inode, size, mtime) and the next read sees it. Callers must not change it."""
    path = _path(ws)
    try:
        st = path.stat()
    except FileNotFoundError:
        return {"users": {}, "invites": {}}
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _SNAPSHOTS.get(str(path))
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        data = _parse(path.read_bytes())
    except FileNotFoundError:  # removed between stat and read (a workspace being deleted)
        return {"users": {}, "invites": {}}
    _SNAPSHOTS[str(path)] = (key, data)  # replaced whole: a reader holding the old one keeps a consistent copy
    return data


def _save(ws: Workspace, data: dict[str, Any]) -> None:
    path = _path(ws)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def _check_name(name: str) -> str:
    return zones.check_handle(name)


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters", field="password")
    return password


def list_accounts(ws: Workspace) -> list[Account]:
    return [Account(**u) for _, u in sorted(_snapshot(ws)["users"].items())]


def get_account(ws: Workspace, name: str) -> Account | None:
    user = _snapshot(ws)["users"].get(name)
    return Account(**user) if user else None


def has_accounts(ws: Workspace) -> bool:
    return bool(_snapshot(ws)["users"])


def add_account(ws: Workspace, name: str, role: str, password: str) -> Account:
    """A new account with this password; InputError when the name is taken or the role unknown."""
    _check_name(name)
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}", field="--role", hint="use admin or listener")
    hashed = _hasher().hash(_check_password(password))
    with ws.writing(command="users add"):
        data = _load(ws)
        if name in data["users"]:
            raise InputError(f"account {name!r} exists", field="NAME", hint="pick another name, or remove it first")
        acc = Account(name, role, hashed, _now().isoformat(timespec="seconds"))
        data["users"][name] = asdict(acc)
        _save(ws, data)
    return acc


def remove_account(ws: Workspace, name: str) -> bool:
    """Remove the account and its open invites (not its data: see serve.mydata.delete_my_data)."""
    with ws.writing(command="users remove"):
        data = _load(ws)
        found = data["users"].pop(name, None) is not None
        data["invites"] = {k: v for k, v in data["invites"].items() if v["name"] != name}
        _save(ws, data)
    return found


def verify(ws: Workspace, name: str, password: str) -> Account | None:
    """The account when the password is right, else None. The hash is checked even for an unknown name, so the
    time taken does not tell which names exist."""
    from argon2.exceptions import VerificationError

    acc = get_account(ws, name) if isinstance(name, str) else None
    hasher = _hasher()
    target = acc.password_hash if acc and acc.password_hash else _dummy_hash()
    try:
        hasher.verify(target, password if isinstance(password, str) else "")
    except (VerificationError, ValueError):
        return None
    return acc if acc and acc.password_hash else None


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_hasher().hash(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(ws: Workspace, name: str, role: str = "listener", hours: int = 72) -> tuple[str, datetime]:
    """A one-time invite token for a new account `name` (the link is `/invite/<token>`) and its expiry."""
    _check_name(name)
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}", field="--role", hint="use admin or listener")
    if hours < 1:
        raise InputError("an invite must last at least one hour", field="--hours")
    token = secrets.token_urlsafe(32)
    expires = _now() + timedelta(hours=hours)
    with ws.writing(command="users invite"):
        data = _load(ws)
        if name in data["users"]:
            raise InputError(f"account {name!r} exists", field="NAME")
        data["invites"] = {k: v for k, v in data["invites"].items() if v["name"] != name}  # the newest link wins
        data["invites"][_token_id(token)] = {"name": name, "role": role,
                                              "expires_at": expires.isoformat(timespec="seconds")}
        _save(ws, data)
    return token, expires


def invite_for(ws: Workspace, token: str) -> dict[str, Any] | None:
    """The open, unexpired invite for this token, or None."""
    if not isinstance(token, str) or not token:
        return None
    inv = _snapshot(ws)["invites"].get(_token_id(token))
    if inv is None or datetime.fromisoformat(inv["expires_at"]) <= _now():
        return None
    return dict(inv)


def accept_invite(ws: Workspace, token: str, password: str) -> Account:
    """Create the invited account with this password and spend the token (once, before its expiry)."""
    hashed = _hasher().hash(_check_password(password))
    with ws.writing(command="users accept-invite"):
        inv = invite_for(ws, token)
        if inv is None:
            raise InputError("this invite link is unknown, used or expired", field="invite",
                             hint="ask an admin for a new one (`tunelake users invite NAME`)")
        data = _load(ws)
        data["invites"].pop(_token_id(token), None)
        if inv["name"] in data["users"]:
            _save(ws, data)
            raise InputError(f"account {inv['name']!r} exists", field="invite")
        acc = Account(inv["name"], inv["role"], hashed, _now().isoformat(timespec="seconds"))
        data["users"][acc.name] = asdict(acc)
        _save(ws, data)
    return acc


def pending_invites(ws: Workspace) -> list[dict[str, Any]]:
    return sorted((dict(v) for v in _snapshot(ws)["invites"].values()), key=lambda v: v["name"])


__all__ = ["ROLES", "Account", "accept_invite", "add_account", "get_account", "has_accounts", "invite",
           "invite_for", "list_accounts", "pending_invites", "remove_account", "verify"]
