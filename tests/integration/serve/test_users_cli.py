"""`tunelake users` through the real command line (another process): accounts are Argon2 hashes in a 0600 file,
bad input is one line naming the field with a non-zero exit, and an invite is a one-time link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def tl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "tunelake.cli", "-w", str(root), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_users_add_invite_list_remove(tmp_path: Path, requires: Any) -> None:
    requires("argon2")
    root = tmp_path / "ws"
    ok = tl(root, "users", "add", "ana", "--role", "admin", "--password", "ten chars ok")
    assert ok.returncode == 0, ok.stderr
    short = tl(root, "users", "add", "ben", "--password", "short")
    bad_role = tl(root, "users", "add", "ben", "--role", "root", "--password", "ten chars ok")
    bad_name = tl(root, "users", "add", "../ben", "--password", "ten chars ok")
    again = tl(root, "users", "add", "ana", "--password", "ten chars ok")
    for done, words in ((short, "at least 10"), (bad_role, "unknown role"), (bad_name, "invalid user handle"),
                        (again, "exists")):
        assert done.returncode != 0 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr
    invite = tl(root, "users", "invite", "ben", "--url", "https://music.example.org/")
    assert invite.returncode == 0
    link = invite.stdout.split()[0]
    assert link.startswith("https://music.example.org/invite/") and len(link.rsplit("/", 1)[1]) >= 40
    listed = tl(root, "users", "list").stdout
    assert "ana" in listed and "admin" in listed and "ben" in listed and "invited" in listed
    secret = root / "secrets" / "accounts.json"
    assert secret.stat().st_mode & 0o777 == 0o600 and (root / "secrets").stat().st_mode & 0o777 == 0o700
    data = json.loads(secret.read_text())
    assert data["users"]["ana"]["password_hash"].startswith("$argon2id$")
    assert "ten chars ok" not in secret.read_text() and link.rsplit("/", 1)[1] not in secret.read_text()
    assert tl(root, "users", "remove", "ana").returncode == 0
    missing = tl(root, "users", "remove", "ana")
    assert missing.returncode != 0 and "no account 'ana'" in missing.stderr


def test_serve_refuses_a_public_address_without_accounts(tmp_path: Path, requires: Any) -> None:
    requires("flask_login")
    done = tl(tmp_path / "ws", "serve", "--host", "0.0.0.0", "--port", "18999")
    assert done.returncode != 0
    assert "needs accounts" in done.stderr and "tunelake users add" in done.stderr
