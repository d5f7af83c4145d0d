"""Per-user authorisation: the authorization-code + PKCE flow through Spotipy, and the token cache — one file per
listener under `<workspace>/secrets/tokens/`, mode 0600, written atomically, never logged."""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson

from tunelake.errors import ConfigError, SourceError
from tunelake.lake import zones
from tunelake.settings import private_dir
from tunelake.workspace import Workspace

# Spotipy logs request headers (bearer tokens) and token responses at DEBUG and every HTTP error at ERROR:
# keep it quiet; tunelake reports what matters itself.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)

REFRESH_ISSUED = "refresh_token_issued_at"  # epoch seconds, kept in the token file beside Spotipy's fields
REFRESH_TOKEN_LIFETIME_S = 182 * 86400  # Spotify: refresh tokens expire 6 months after issue (from 2026-07-20)


def read_token(ws: Workspace, handle: str) -> dict[str, Any] | None:
    """The listener's cached token (never logged), or None when they are not logged in."""
    try:
        return orjson.loads(token_path(ws, handle).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


SCOPES = (
    "user-read-private",  # profile: country and product, to register the listener
    "user-read-recently-played",  # recently played tracks (incremental listening history)
    "user-top-read",  # top artists and tracks per time range
    "user-library-read",  # saved tracks
    "playlist-read-private",  # the listener's playlists and their items
    "playlist-read-collaborative",
    "playlist-modify-private",  # push recommendations as a (private) playlist
    "playlist-modify-public",
)


def token_path(ws: Workspace, handle: str) -> Path:
    return ws.secrets_dir / "tokens" / f"{zones.check_handle(handle)}.json"


def _cache_handler_class() -> type:
    from spotipy.cache_handler import CacheHandler

    class TokenFile(CacheHandler):
        """Spotipy token cache in one file per user, mode 0600, written atomically, never logged."""

        def __init__(self, path: Path) -> None:
            self.path = path

        def get_cached_token(self) -> dict[str, Any] | None:
            try:
                return orjson.loads(self.path.read_bytes())
            except (FileNotFoundError, orjson.JSONDecodeError):
                return None

        def save_token_to_cache(self, token_info: dict[str, Any]) -> None:
            private_dir(self.path.parent.parent)  # secrets/
            private_dir(self.path.parent)  # secrets/tokens/
            # When the refresh token was issued: Spotify's refresh tokens expire 6 months after that (from
            # 2026-07-20), and a refresh may or may not rotate it, so the age is kept across refreshes.
            before = self.get_cached_token() or {}
            token_info = dict(token_info)
            if before.get("refresh_token") == token_info.get("refresh_token") and before.get(REFRESH_ISSUED):
                token_info[REFRESH_ISSUED] = before[REFRESH_ISSUED]
            else:
                token_info[REFRESH_ISSUED] = int(time.time())
            tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(token_info))
            os.replace(tmp, self.path)

    return TokenFile


def _client_id(ws: Workspace) -> str:
    cid = ws.settings.spotify_client_id or os.environ.get("SPOTIPY_CLIENT_ID", "")
    if not cid:
        raise ConfigError(
            "no Spotify client id",
            hint="set TUNELAKE_SPOTIFY_CLIENT_ID (or SPOTIPY_CLIENT_ID) to "
            "your app's client id; see docs/spotify-api.md",
        )
    return cid


def make_auth(ws: Workspace, handle: str, *, interactive: bool = False) -> Any:
    """A Spotipy PKCE auth manager for one user, pointed at `spotify_accounts_url`, caching in the token file."""
    import requests
    from spotipy.oauth2 import SpotifyPKCE

    class Pkce(SpotifyPKCE):
        def get_authorization_code(self, response: Any = None) -> Any:
            if response or interactive:
                return super().get_authorization_code(response)
            raise SourceError(
                f"user {handle!r} is not logged in to Spotify (or the token lost its scopes)",
                hint=f"run `tunelake auth login --user {handle}`",
            )

    accounts = ws.settings.spotify_accounts_url.rstrip("/")
    auth = Pkce(
        client_id=_client_id(ws),
        redirect_uri=ws.settings.spotify_redirect_uri,
        scope=" ".join(SCOPES),
        cache_handler=_cache_handler_class()(token_path(ws, handle)),
        open_browser=False,
        requests_session=requests.Session(),
        requests_timeout=30,
    )
    auth.OAUTH_AUTHORIZE_URL = f"{accounts}/authorize"
    auth.OAUTH_TOKEN_URL = f"{accounts}/api/token"
    return auth
