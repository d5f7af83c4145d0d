"""Connect Spotify from the browser: the authorization-code + PKCE flow of `tunelake auth login`, with the
service's own callback route as the redirect URI.

`start` makes the PKCE pair and a random state and returns the authorize URL; the server keeps the verifier
and the state in its memory for ten minutes, the session only a ticket naming them. `finish` checks the state
that came back, trades the code for a token with the same Spotipy auth manager as the CLI, and the token lands in
`secrets/tokens/<handle>.json` (0600), where `tunelake pull` and the collector find it: a listener with a token
file is a listener the collector polls.
`disconnect` removes the file.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from tunelake.errors import SourceError
from tunelake.sources.spotify.auth import make_auth, token_path
from tunelake.workspace import Workspace


@dataclass(frozen=True)
class Pending:
    """What the session keeps between the redirect to Spotify and the callback."""

    state: str
    verifier: str
    challenge: str
    redirect_uri: str

    def as_dict(self) -> dict[str, str]:
        return {"state": self.state, "verifier": self.verifier, "challenge": self.challenge,
                "redirect_uri": self.redirect_uri}


def _auth(ws: Workspace, handle: str, redirect_uri: str) -> Any:
    return make_auth(ws.with_settings(spotify_redirect_uri=redirect_uri), handle, interactive=True)


def start(ws: Workspace, handle: str, redirect_uri: str) -> tuple[str, Pending]:
    """The Spotify authorize URL for `handle`, and what to keep until the callback."""
    auth = _auth(ws, handle, redirect_uri)
    auth.get_pkce_handshake_parameters()
    state = secrets.token_urlsafe(24)
    return auth.get_authorize_url(state), Pending(state, auth.code_verifier, auth.code_challenge, redirect_uri)


def finish(ws: Workspace, handle: str, pending: dict[str, Any] | None, args: dict[str, Any]) -> None:
    """Check the callback's state against the session's, then trade the code for a token (stored 0600)."""
    from spotipy.oauth2 import SpotifyOauthError

    if not pending or not all(isinstance(pending.get(k), str) for k in ("state", "verifier", "challenge")):
        raise SourceError("Spotify connection failed: no connection was started in this session",
                          hint="start again from the account page")
    got = args.get("state")
    if not isinstance(got, str) or not hmac.compare_digest(got, pending["state"]):
        raise SourceError("Spotify connection failed: the state did not match (a stale or foreign redirect)")
    if args.get("error"):
        raise SourceError(f"Spotify connection refused: {str(args['error'])[:80]}")
    code = args.get("code")
    if not isinstance(code, str) or not code:
        raise SourceError("Spotify connection failed: no code in the redirect")
    auth = _auth(ws, handle, pending["redirect_uri"])
    auth.code_verifier = pending["verifier"]
    auth.code_challenge = pending["challenge"]  # Spotipy makes a new pair when either is missing
    try:
        auth.get_access_token(code=code, check_cache=False)
    except SpotifyOauthError as exc:
        raise SourceError(f"Spotify connection failed: {exc.error}: {exc.error_description}") from None


def connected(ws: Workspace, handle: str) -> bool:
    return token_path(ws, handle).exists()


def disconnect(ws: Workspace, handle: str) -> bool:
    """Remove the listener's token (the collector stops polling them); True when there was one."""
    path = token_path(ws, handle)
    with ws.writing(command="serve disconnect"):
        if path.exists():
            path.unlink()
            return True
    return False


__all__ = ["Pending", "connected", "disconnect", "finish", "start"]
