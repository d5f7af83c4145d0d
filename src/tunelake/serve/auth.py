"""Sessions, CSRF and login throttling for `tunelake serve`, each from a maintained library: Flask-Login (who is
signed in), Flask-WTF's CSRFProtect (a token on every POST, the Dash callbacks included) and Flask-Limiter
(login attempts per address and per account name). Nothing here hashes or signs by hand.

The session cookie is HttpOnly and SameSite=Lax (Lax, not Strict, so the redirect back from Spotify's accounts
service still carries it), Secure when `serve_https` is on. Dash's renderer sends the CSRF token it finds in the
`_csrf_token` cookie as `X-CSRFToken`, which CSRFProtect checks; that cookie is readable by the page's script
(that is its purpose) and SameSite=Strict, and a token is only valid together with the session it was issued in.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from tunelake.analytics.insights import Viewer, listener_viewer
from tunelake.serve import accounts
from tunelake.serve.accounts import Account
from tunelake.settings import private_dir
from tunelake.workspace import Workspace

CSRF_COOKIE = "_csrf_token"
SESSION_COOKIE = "tunelake_session"


class User:
    """The Flask-Login user of an account (its id is the account name)."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.is_authenticated = True
        self.is_active = True
        self.is_anonymous = False

    def get_id(self) -> str:
        return self.account.name

    @property
    def viewer(self) -> Viewer:
        a = self.account
        return Viewer(None, a.name) if a.is_admin else listener_viewer(a.user_key, a.name)


def secret_key(ws: Workspace) -> bytes:
    """The session-signing key: random, made once per workspace, kept in secrets/ (0600)."""
    path: Path = ws.secrets_dir / "serve-secret.key"
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        os.replace(tmp, path)
    return path.read_bytes()


def install(server: Any, ws: Workspace) -> Any:
    """Sessions, CSRF and the limiter on the Flask app; returns the limiter (the login route is limited)."""
    from flask import request
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address
    from flask_login import LoginManager
    from flask_wtf.csrf import CSRFProtect, generate_csrf

    https = ws.settings.serve_https == "on"
    server.secret_key = secret_key(ws)
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https, PERMANENT_SESSION_LIFETIME=12 * 3600,
        WTF_CSRF_TIME_LIMIT=12 * 3600, WTF_CSRF_SSL_STRICT=https,
        MAX_CONTENT_LENGTH=None,  # uploads are streamed and limited by serve.upload
    )
    manager = LoginManager(server)
    manager.session_protection = "strong"

    @manager.user_loader
    def load(name: str) -> User | None:
        acc = accounts.get_account(ws, name)
        return User(acc) if acc else None

    CSRFProtect(server)
    limiter = Limiter(get_remote_address, app=server, storage_uri="memory://", default_limits=[],
                      headers_enabled=True)

    @server.after_request
    def csrf_cookie(resp: Any) -> Any:
        """Give Dash's renderer the session's CSRF token (it reads this cookie and sends X-CSRFToken)."""
        if request.endpoint != "static":
            resp.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Strict", secure=https, httponly=False)
        return resp

    return limiter


def login_limits(ws: Workspace) -> tuple[str, str]:
    """(per address, per account name) limits of login attempts, as Flask-Limiter strings."""
    return ws.settings.serve_login_rate, ws.settings.serve_login_rate_per_name


__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "User", "install", "login_limits", "secret_key"]
