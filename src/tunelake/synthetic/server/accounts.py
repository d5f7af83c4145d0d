"""The fake accounts service: authorisation-code login with PKCE, the refresh grant, bearer tokens, dev-mode cap.

It is strict where a client can get the real flow wrong (the S256 verifier, the redirect URI, the client id, a code
used twice or too late) and lenient where a test should not need a browser: `login_hint=<listener>` approves at
once as that listener. Without a hint it shows a page of listeners to pick from, as a stand-in for the login page.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tunelake.synthetic.server.responses import ApiError, json_response

DEV_MODE_MAX_USERS = 5  # Spotify's development-mode limit since Feb/Mar 2026
CODE_LIFETIME_S = 600
_REQUIRED = ("client_id", "response_type", "redirect_uri", "code_challenge")


def _token_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class Accounts:
    """What the accounts service remembers between requests: codes, tokens and who has authorised the app.

    The server's settings (dev mode, auto-approve, token lifetimes) are passed in per request rather than kept
    here, because tests change them on a running server.
    """

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.authorised: list[str] = []
        self.lock = threading.RLock()

    def authorize(self, req: Request, *, handles: list[str], dev_mode: bool, auto_approve: bool) -> Response:
        """`/authorize`: errors the user would see in the browser are plain text; the rest goes to redirect_uri."""
        q = req.args
        for name in _REQUIRED:
            if not q.get(name):
                return Response(f"missing parameter {name}", status=400)
        if q.get("response_type") != "code":
            return Response("response_type must be code", status=400)
        if q.get("code_challenge_method", "S256") != "S256":
            return Response("code_challenge_method must be S256", status=400)
        handle = q.get("login_hint") or q.get("listener")
        redirect = q["redirect_uri"]
        sep = "&" if "?" in redirect else "?"
        state = {"state": q["state"]} if q.get("state") else {}
        if not handle:
            if not auto_approve:
                return Response("interactive login is not available on the fake server", status=400)
            links = "".join(
                f'<li><a href="/authorize?{urlencode({**q.to_dict(), "login_hint": h})}">{h}</a></li>' for h in handles
            )
            return Response(
                f"<html><body><h1>Fake Spotify: log in as</h1><ul>{links}</ul></body></html>",
                mimetype="text/html",
            )
        if handle not in handles:
            return Response(f"unknown listener {handle!r}", status=400)
        with self.lock:
            if dev_mode and handle not in self.authorised and len(self.authorised) >= DEV_MODE_MAX_USERS:
                params = {"error": "access_denied", **state}
                return Response(status=302, headers={"Location": f"{redirect}{sep}{urlencode(params)}"})
            if handle not in self.authorised:
                self.authorised.append(handle)
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "handle": handle,
                "challenge": q["code_challenge"],
                "redirect_uri": redirect,
                "client_id": q["client_id"],
                "scope": q.get("scope", ""),
                "at": time.time(),
            }
        return Response(status=302, headers={"Location": f"{redirect}{sep}{urlencode({'code': code, **state})}"})

    def token(self, req: Request, *, ttl: float, expires_in: int, rotate: bool = True) -> Response:
        """`/api/token`. `ttl` is how long the server honours a new token, `expires_in` what it tells the client:
        they differ when a fault makes tokens die early, which is exactly what a client must cope with. With
        `rotate` off, a refresh answers without a new refresh token, as Spotify may: keep the old one."""
        if req.method != "POST":
            raise ApiError(405, "Method not allowed")
        form = req.form
        grant = form.get("grant_type")
        if grant == "authorization_code":
            with self.lock:
                entry = self.codes.pop(form.get("code", ""), None)
            if entry is None or time.time() - entry["at"] > CODE_LIFETIME_S:
                return _token_error("invalid_grant", "Invalid authorization code")
            if form.get("redirect_uri") != entry["redirect_uri"]:
                return _token_error("invalid_grant", "Invalid redirect URI")
            if form.get("client_id") != entry["client_id"]:
                return _token_error("invalid_client", "Invalid client")
            verifier = form.get("code_verifier", "")
            if not verifier or _s256(verifier) != entry["challenge"]:
                return _token_error("invalid_grant", "code_verifier was incorrect")
            return json_response(self._issue(entry["handle"], entry["scope"], entry["client_id"], ttl, expires_in))
        if grant == "refresh_token":
            with self.lock:
                entry = self.refresh_tokens.get(form.get("refresh_token", ""))
            if entry is None:
                return _token_error("invalid_grant", "Invalid refresh token")
            if entry.get("revoked"):
                return _token_error("invalid_grant", "Refresh token revoked")
            if form.get("client_id") and form.get("client_id") != entry["client_id"]:
                return _token_error("invalid_client", "Invalid client")
            answer = self._issue(entry["handle"], entry["scope"], entry["client_id"], ttl, expires_in)
            if not rotate:
                with self.lock:
                    self.refresh_tokens.pop(answer.pop("refresh_token"))
            return json_response(answer)
        return _token_error("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _issue(self, handle: str, scope: str, client_id: str, ttl: float, expires_in: int) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        refresh = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access] = {"handle": handle, "expires_at": time.time() + ttl, "scope": scope}
            self.refresh_tokens[refresh] = {"handle": handle, "scope": scope, "client_id": client_id}
        return {
            "access_token": access,
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": expires_in,
            "refresh_token": refresh,
        }

    def listener_for(self, req: Request) -> str:
        """The listener a Web API request acts for, or the 401 the real API gives."""
        header = req.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(401, "No token provided")
        with self.lock:
            tok = self.tokens.get(header[len("Bearer ") :])
        if tok is None:
            raise ApiError(401, "Invalid access token")
        if tok["expires_at"] <= time.time():
            raise ApiError(401, "The access token expired")
        return tok["handle"]

    def revoke(self, handle: str | None = None) -> int:
        """Refresh tokens (of `handle`, or everyone's) answer `invalid_grant` from now on, and their access tokens
        401: the listener removed the app, or the token outlived its six months. Returns how many were revoked."""
        n = 0
        with self.lock:
            for entry in self.refresh_tokens.values():
                if handle is None or entry["handle"] == handle:
                    n += not entry.get("revoked")
                    entry["revoked"] = True
            for tok in self.tokens.values():
                if handle is None or tok["handle"] == handle:
                    tok["expires_at"] = 0.0
        return n

    def expire_all(self) -> None:
        """Every access token issued so far answers 401 from now on (refresh tokens stay valid)."""
        with self.lock:
            for tok in self.tokens.values():
                tok["expires_at"] = 0.0
