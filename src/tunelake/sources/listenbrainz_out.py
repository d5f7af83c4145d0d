"""Play rows → ListenBrainz listens, and sending them to a ListenBrainz-compatible server with liblistenbrainz.

The listen format is the one of ListenBrainz's submit-listens API: `listened_at` (Unix seconds), `track_metadata`
with `artist_name`, `track_name`, `release_name` and `additional_info` (MBIDs when known, `spotify_id` as a track
URL when the play has a Spotify id, `music_service`, `submission_client`). A Spotify play is written as
ListenBrainz's own importer of Spotify histories writes it — `listened_at` = Spotify's end of playback,
`additional_info.ms_played`, `music_service` "spotify.com" — so the listens ListenBrainz already made from the same
history are the same listens to it; a scrobble keeps its own time (the start, or the end when only that is known).
An import file is one submit body: `{"listen_type": "import", "payload": [...]}`; `tunelake import` reads it back
to the same plays.

What is sent is what ListenBrainz calls a listen: music plays of at least `stream_threshold_ms` (Spotify's own
30-second rule; ListenBrainz's importer of Spotify histories applies the same) and every scrobble. Nothing
personal is in a listen (no IP address, user agent or account name).

Sending honours the server's rate limit: after each request, when `X-RateLimit-Remaining` is 0, the next request
waits `X-RateLimit-Reset-In` seconds (liblistenbrainz reads both headers; the wait here is timed from the response,
so it never starts early); a 429 anyway is waited out and retried a few times.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import pyarrow as pa

from tunelake import __version__
from tunelake.errors import ConfigError, SourceError, TransientSourceError
from tunelake.sources.names import is_surrogate
from tunelake.sources.types import SCROBBLE_SOURCES

DEFAULT_SERVER = "https://api.listenbrainz.org"
MAX_LISTENS_PER_REQUEST = 1000  # ListenBrainz's limit per submit-listens request
BATCH = 500  # listens per request: well inside the limit and its 10 kB-per-listen payload cap
RETRIES_429 = 5


@dataclass
class Listens:
    """The listens of one listener, and the plays left out, by reason."""

    payload: list[dict[str, Any]]
    skipped: dict[str, int] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"listen_type": "import", "payload": self.payload}


def _epoch_s(t: Any) -> int:
    return int(t.replace(tzinfo=UTC).timestamp())


def listens_of(plays: pa.Table, stream_threshold_ms: int = 30_000) -> Listens:
    """ListenBrainz listens of curated play rows (one listener's), oldest first."""
    out: list[tuple[int, dict[str, Any]]] = []
    skipped: dict[str, int] = {}
    for r in plays.to_pylist():
        if r["content_type"] != "track":
            reason = "not_music"
        elif not r["track_name"] or not r["artist_name"]:
            reason = "no_names"
        elif r["ms_played"] is not None and r["ms_played"] < stream_threshold_ms:
            reason = "not_a_stream"
        else:
            reason = ""
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        scrobble = r["source"] in SCROBBLE_SOURCES
        info: dict[str, Any] = json.loads(r["additional_info"]) if r.get("additional_info") else {}
        if scrobble:  # its own time: the start, or the end when only that is known
            at = _epoch_s(r["listened_at"] if r.get("listened_at") is not None else r["ended_at"])
        else:  # as ListenBrainz's own importer of Spotify histories writes them: Spotify's end, and ms_played
            at = _epoch_s(r["ended_at"])
            info["music_service"] = "spotify.com"
            if r["ms_played"] is not None:
                info["ms_played"] = r["ms_played"]
        if r["track_id"] and not is_surrogate(r["track_id"]):
            info.setdefault("spotify_id", f"https://open.spotify.com/track/{r['track_id']}")
            if not scrobble:
                info.setdefault("origin_url", info["spotify_id"])
        for key in ("recording_mbid", "release_mbid"):
            if r.get(key):
                info.setdefault(key, r[key])
        if r.get("artist_mbids"):
            info.setdefault("artist_mbids", r["artist_mbids"].split(";"))
        info["submission_client"] = "tunelake"
        info["submission_client_version"] = __version__
        meta: dict[str, Any] = {"artist_name": r["artist_name"], "track_name": r["track_name"]}
        if r["album_name"]:
            meta["release_name"] = r["album_name"]
        meta["additional_info"] = info
        out.append((at, {"listened_at": at, "track_metadata": meta}))
    out.sort(key=lambda x: (x[0], x[1]["track_metadata"]["artist_name"], x[1]["track_metadata"]["track_name"]))
    return Listens([listen for _, listen in out], skipped)


@dataclass
class SubmitResult:
    submitted: int = 0
    requests: int = 0
    waited_s: float = 0.0  # time spent waiting for the rate limit
    retried_429: int = 0


def _batches(payload: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(payload), size):
        yield payload[i:i + size]


def submit(listens: Listens, token: str, server: str = DEFAULT_SERVER, *, batch: int = BATCH,
           progress: Callable[[int, int], None] | None = None, sleep: Callable[[float], None] = time.sleep
           ) -> SubmitResult:
    """Send the listens as `import` requests of at most `batch` listens, honouring the rate-limit headers."""
    try:
        import liblistenbrainz
        import requests
        from liblistenbrainz.errors import ListenBrainzAPIException
    except ImportError:
        raise ConfigError("sending listens needs liblistenbrainz",
                          hint="pip install 'tunelake[scrobbles]' (or liblistenbrainz)") from None
    if not token:
        raise ConfigError("no ListenBrainz token", hint="set LISTENBRAINZ_TOKEN to the user token from "
                                                        "https://listenbrainz.org/settings/")
    batch = max(1, min(batch, MAX_LISTENS_PER_REQUEST))
    client = liblistenbrainz.ListenBrainz(api_base_url=server.rstrip("/"))
    result = SubmitResult()
    answered = time.monotonic()

    def call(fn: Callable[[], Any]) -> Any:
        nonlocal answered
        for attempt in range(RETRIES_429 + 1):
            if client.remaining_requests == 0 and client.ratelimit_reset_in is not None:
                wait = client.ratelimit_reset_in - (time.monotonic() - answered)
                if wait > 0:
                    sleep(wait + 0.05)
                    result.waited_s += wait + 0.05
            try:
                value = fn()
                answered = time.monotonic()
                result.requests += 1
                return value
            except ListenBrainzAPIException as exc:
                answered = time.monotonic()
                if exc.status_code == 429 and attempt < RETRIES_429:
                    result.retried_429 += 1
                    client.remaining_requests = 0
                    client.ratelimit_reset_in = client.ratelimit_reset_in or 1
                    continue
                if exc.status_code in (401, 403):
                    raise SourceError(f"ListenBrainz at {server} refused the token ({exc.status_code})",
                                      hint="check LISTENBRAINZ_TOKEN") from None
                if exc.status_code == 429 or (exc.status_code or 0) >= 500:
                    raise TransientSourceError(f"ListenBrainz at {server} answered {exc.status_code}: "
                                               f"{exc.message or ''}".rstrip(": ")) from None
                raise SourceError(f"ListenBrainz at {server} refused the listens ({exc.status_code}): "
                                  f"{exc.message or ''}") from None
            except requests.exceptions.RetryError:  # 429s or 5xx beyond urllib3's own retries
                answered = time.monotonic()
                if attempt < RETRIES_429:
                    result.retried_429 += 1
                    client.remaining_requests, client.ratelimit_reset_in = 0, client.ratelimit_reset_in or 1
                    continue
                raise TransientSourceError(f"ListenBrainz at {server} kept refusing requests") from None
            except requests.exceptions.RequestException as exc:
                raise TransientSourceError(f"cannot reach ListenBrainz at {server}: {type(exc).__name__}",
                                           hint="try again later") from None
        raise TransientSourceError(f"ListenBrainz at {server} kept answering 429")

    try:
        call(lambda: client.set_auth_token(token, check_validity=True))
    except liblistenbrainz.errors.InvalidAuthTokenException:
        raise SourceError(f"ListenBrainz at {server} says the token is not valid",
                          hint="set LISTENBRAINZ_TOKEN to the user token from https://listenbrainz.org/settings/"
                          ) from None
    total = len(listens.payload)
    for chunk in _batches(listens.payload, batch):
        objs = [_listen(liblistenbrainz, x) for x in chunk]
        call(lambda objs=objs: client.submit_multiple_listens(objs))
        result.submitted += len(chunk)
        if progress:
            progress(result.submitted, total)
    return result


def _listen(lib: Any, x: dict[str, Any]) -> Any:
    meta = x["track_metadata"]
    return lib.Listen(track_name=meta["track_name"], artist_name=meta["artist_name"], listened_at=x["listened_at"],
                      release_name=meta.get("release_name"), additional_info=dict(meta["additional_info"]))
