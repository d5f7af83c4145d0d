"""Spotipy for one listener behind `SpotifyClient.call`, which applies tunelake's retry policy (Spotipy's own
retries are off): `429` waits for `Retry-After` up to `retry_after_cap_s` and beyond it stops with a
`TransientSourceError` saying when to resume; `5xx` and network errors back off exponentially (bounded); a `401`
refreshes the token once. The caller holds the data: a stop loses nothing already committed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tunelake.errors import SourceError, TokenRevokedError, TransientSourceError
from tunelake.sources.spotify.auth import make_auth, token_path
from tunelake.workspace import Workspace

log = logging.getLogger("tunelake")


class ApiForbidden(SourceError):
    """403: the app may not use this endpoint (development mode, missing scope)."""


class ApiNotFound(SourceError):
    """404: no such object."""


class RateGate:
    """One app's rate limit, shared by every listener it polls: a 429 with Retry-After on any call holds every
    call of every client using the gate until then (Spotify limits the app, not the user)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._until = 0.0
        self._lock = threading.Lock()
        self._clock = clock
        self.holds = 0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)
            self.holds += 1

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._until - self._clock())


@dataclass
class RetryPolicy:
    retry_after_cap_s: float = 60
    max_rate_limit_waits: int = 10
    max_server_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    gate: RateGate | None = None  # shared with other clients of the same app (the collector)


def oauth_error(handle: str, exc: Any) -> SourceError:
    """What a failed token refresh means. Only `invalid_grant` says the refresh token is dead; anything else (a
    5xx page, an empty answer, `server_error`, `temporarily_unavailable`) is transient and must never cost the
    listener their token."""
    error = getattr(exc, "error", None)
    if error == "invalid_grant":
        return TokenRevokedError(f"Spotify refused the refresh token of {handle!r} (invalid_grant)",
                                 hint=f"run `tunelake auth login --user {handle}`")
    if error in ("invalid_client", "unauthorized_client"):
        return SourceError(f"Spotify accounts service: {error}: the app's client id is not accepted",
                           hint="check TUNELAKE_SPOTIFY_CLIENT_ID; see docs/spotify-api.md")
    return TransientSourceError(f"Spotify accounts service failed to refresh the token of {handle!r} "
                                f"({str(error)[:80] if error else 'no error code'}); the token is kept",
                                hint=f"try `tunelake pull --user {handle}` again later")


class SpotifyClient:
    """Spotipy for one user, with retries off, behind `call()` which applies tunelake's retry policy."""

    def __init__(self, ws: Workspace, handle: str, policy: RetryPolicy | None = None) -> None:
        import requests
        import spotipy

        self.ws, self.handle = ws, handle
        self.policy = policy or RetryPolicy(retry_after_cap_s=ws.settings.retry_after_cap_s)
        if not token_path(ws, handle).exists():
            raise SourceError(
                f"user {handle!r} is not logged in to Spotify", hint=f"run `tunelake auth login --user {handle}`"
            )
        self.auth = make_auth(ws, handle)
        # A plain session: no urllib3 Retry adapter, so every status reaches our policy unchanged.
        self.sp = spotipy.Spotify(
            auth_manager=self.auth,
            requests_session=requests.Session(),
            retries=0,
            status_retries=0,
            requests_timeout=30,
        )
        self.sp.prefix = ws.settings.spotify_api_url.rstrip("/") + "/"
        self.stats = {"calls": 0, "rate_limited": 0, "server_errors": 0, "refreshed": 0}

    def _refresh(self) -> None:
        import requests
        from spotipy.oauth2 import SpotifyOauthError

        token = self.auth.cache_handler.get_cached_token() or {}
        if not token.get("refresh_token"):
            raise SourceError(
                f"the Spotify token of {self.handle!r} was rejected and cannot be refreshed",
                hint=f"run `tunelake auth login --user {self.handle}`",
            )
        try:
            self.auth.refresh_access_token(token["refresh_token"])
        except SpotifyOauthError as exc:
            raise oauth_error(self.handle, exc) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientSourceError(f"cannot reach the Spotify accounts service to refresh the token of "
                                       f"{self.handle!r}: {type(exc).__name__}; the token is kept",
                                       hint="check the network and try again") from None
        self.stats["refreshed"] += 1

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import requests
        from spotipy.exceptions import SpotifyException
        from spotipy.oauth2 import SpotifyOauthError

        p = self.policy
        server_errors = rate_waits = 0
        refreshed = False
        while True:
            if p.gate is not None and (pause := p.gate.remaining()) > 0:
                p.sleep(pause)
                continue
            self.stats["calls"] += 1
            try:
                return getattr(self.sp, method)(*args, **kwargs)
            except SpotifyException as exc:
                status = exc.http_status
                message = str(exc.msg).split("\n")[-1].strip()
                if status == 429:
                    self.stats["rate_limited"] += 1
                    wait = _retry_after(exc.headers)
                    rate_waits += 1
                    if wait > p.retry_after_cap_s or rate_waits > p.max_rate_limit_waits:
                        resume = datetime.now(UTC) + timedelta(seconds=wait)
                        why = (f"asked to wait {wait:g} s (cap retry_after_cap_s={p.retry_after_cap_s:g} s)"
                               if wait > p.retry_after_cap_s else
                               f"still rate limited after waiting {rate_waits - 1} times on {method} (at most "
                               f"{p.max_rate_limit_waits} waits per call)")
                        raise TransientSourceError(
                            f"Spotify rate limit: {why}; stopped cleanly, resume after "
                            f"{resume:%Y-%m-%d %H:%M:%S} UTC",
                            hint=f"run `tunelake pull --user {self.handle}` again then; it continues where it stopped",
                        ) from None
                    log.info("rate limited on %s: waiting %s s", method, wait)
                    if p.gate is not None:
                        p.gate.hold(wait)  # every listener of this app waits, then this call retries
                    else:
                        p.sleep(wait)
                    continue
                if status >= 500:
                    self.stats["server_errors"] += 1
                    server_errors += 1
                    if server_errors > p.max_server_retries:
                        raise TransientSourceError(
                            f"Spotify API answered {status} {server_errors} times in a row on {method}",
                            hint=f"try `tunelake pull --user {self.handle}` again later",
                        ) from None
                    p.sleep(min(p.backoff_base_s * 2 ** (server_errors - 1), p.backoff_max_s))
                    continue
                if status == 401 and not refreshed:
                    self._refresh()
                    refreshed = True
                    continue
                if status == 401:
                    raise SourceError(
                        f"Spotify rejected the token of {self.handle!r}: {message}",
                        hint=f"run `tunelake auth login --user {self.handle}`",
                    ) from None
                if status == 403:
                    raise ApiForbidden(f"Spotify API: {method} is forbidden for this app: {message}") from None
                if status == 404:
                    raise ApiNotFound(f"Spotify API: {method}: not found") from None
                raise SourceError(f"Spotify API error {status} on {method}: {message}") from None
            except SpotifyOauthError as exc:  # the automatic refresh of an expired access token failed
                raise oauth_error(self.handle, exc) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                server_errors += 1
                if server_errors > p.max_server_retries:
                    raise TransientSourceError(
                        f"cannot reach the Spotify API: {type(exc).__name__}", hint="check the network and try again"
                    ) from None
                p.sleep(min(p.backoff_base_s * 2 ** (server_errors - 1), p.backoff_max_s))


def _retry_after(headers: Any) -> float:
    try:
        return max(0.0, float((headers or {}).get("Retry-After", 1)))
    except (TypeError, ValueError):
        return 1.0
