"""Logging a listener in: the authorization-code + PKCE flow through the browser, a pasted redirect URL, or (against
the fake server) an automatic approval; the token lands in the listener's token file."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlparse

from tunelake.errors import ConfigError, SourceError, TransientSourceError
from tunelake.lake import zones
from tunelake.sources.spotify.auth import make_auth
from tunelake.sources.spotify.client import SpotifyClient
from tunelake.workspace import Workspace


def login(
    ws: Workspace,
    handle: str,
    *,
    method: str = "listen",
    listener: str | None = None,
    response_url: str | None = None,
    prompt: Callable[[str], str] | None = None,
    open_browser: bool = True,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Authorization code with PKCE; the token lands in `<workspace>/secrets/tokens/<handle>.json` (mode 0600).

    method: `listen` (a one-shot HTTP listener on the redirect URI catches the redirect), `paste` (the user pastes
    the URL they were redirected to; `response_url` gives it directly) or `auto` (the fake server's auto-approve:
    `login_hint=<listener>` is added and the redirect is followed without a browser).
    Returns the profile (`/me`) of the account that was logged in; the token itself is never returned or printed.
    """
    import requests
    from spotipy.oauth2 import SpotifyOAuth, SpotifyOauthError, start_local_http_server

    zones.check_handle(handle)
    auth = make_auth(ws, handle, interactive=True)
    auth.get_pkce_handshake_parameters()
    state = secrets.token_urlsafe(16)
    url = auth.get_authorize_url(state)
    if method == "auto":
        try:
            resp = requests.get(
                f"{url}&{urlencode({'login_hint': listener or handle})}", allow_redirects=False, timeout=30
            )
        except requests.RequestException as exc:
            raise TransientSourceError(
                f"cannot reach the Spotify accounts service at {ws.settings.spotify_accounts_url}: {exc}"
            ) from None
        if resp.status_code not in (301, 302, 303, 307) or "Location" not in resp.headers:
            raise SourceError(f"accounts service refused the login: HTTP {resp.status_code} {resp.text[:200]}")
        response_url = resp.headers["Location"]
    elif method == "listen" and response_url is None:
        redirect = urlparse(ws.settings.spotify_redirect_uri)
        if redirect.hostname not in ("127.0.0.1", "localhost") or not redirect.port:
            raise ConfigError(
                f"redirect URI {ws.settings.spotify_redirect_uri} is not a loopback address with a port",
                hint="use --paste, or set spotify_redirect_uri to http://127.0.0.1:PORT/callback",
            )
        server = start_local_http_server(redirect.port)
        try:
            (say or print)(f"Open this URL to authorise tunelake:\n{url}")
            if open_browser:
                import webbrowser

                webbrowser.open(url)
            server.handle_request()
        finally:
            server.server_close()
        if server.error:
            raise SourceError(f"Spotify login failed: {server.error}")
        if server.state != state:
            raise SourceError("Spotify login failed: the state did not match (a stale or foreign redirect)")
        code = server.auth_code
        response_url = None
    elif method == "paste" and response_url is None:
        ask = prompt or input
        response_url = ask(f"Open this URL, authorise, and paste the URL you were redirected to:\n{url}\n> ")
    elif method not in ("auto", "listen", "paste"):
        raise ConfigError(f"unknown login method {method!r}", hint="use listen, paste or auto")
    if response_url is not None:
        try:
            got_state, code = SpotifyOAuth.parse_auth_response_url(response_url.strip())
        except SpotifyOauthError as exc:
            raise SourceError(f"Spotify login failed: {exc.error or exc}") from None
        if got_state != state:
            raise SourceError("Spotify login failed: the state did not match (a stale or foreign redirect)")
        if not code:
            raise SourceError("Spotify login failed: no code in the redirect URL")
    try:
        auth.get_access_token(code=code, check_cache=False)
    except SpotifyOauthError as exc:
        raise SourceError(f"Spotify login failed: {exc.error}: {exc.error_description}") from None
    me = SpotifyClient(ws, handle).call("me")
    return {
        "user": handle,
        "spotify_id": me.get("id"),
        "display_name": me.get("display_name"),
        "country": me.get("country"),
    }
