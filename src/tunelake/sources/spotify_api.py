"""The Spotify Web API through Spotipy: per-user PKCE login, incremental pulls, metadata enrichment, playlist push.

Everything goes through `SpotifyClient.call`, our own retry policy around Spotipy (whose own retries are off):
`429` waits for `Retry-After` up to `retry_after_cap_s` and beyond it stops with a `TransientSourceError` saying
when to resume; `5xx` and network errors back off exponentially (bounded); a `401` refreshes the token once.
A pull writes what it received to the raw zone (with an envelope), curates it, commits the batch and only then
moves the `recently-played` cursor, so a pull killed half-way resumes with no gap and no duplicate.

API plays carry no `ms_played`: a curated API play gets `ms_played` = the track's `duration_ms` and `ended_at` =
`played_at`. An API play of the same user and track whose end is within `overlap_tolerance_s` of a play already in
the lake from an export is the same playback: it is not added again and is counted as `merged`.
"""

from __future__ import annotations

import bisect
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from tunelake.curate import plays as curated_plays
from tunelake.curate import schemas as curated_schemas
from tunelake.curate.ingest import write_users_table
from tunelake.curate.schemas import TS
from tunelake.errors import ConfigError, SourceError, TransientSourceError
from tunelake.lake import manifest, zones
from tunelake.lake.manifest import Batch, utcnow
from tunelake.lake.store import Lake
from tunelake.settings import private_dir
from tunelake.workspace import Workspace

log = logging.getLogger(__name__)
# Spotipy logs request headers (bearer tokens) and token responses at DEBUG and every HTTP error at ERROR:
# keep it quiet; tunelake reports what matters itself.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)

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
SOURCE = "api"
TIME_RANGES = ("short_term", "medium_term", "long_term")
WHAT_ALL = ("profile", "recent", "top", "saved", "playlists", "enrich")
CAPABILITIES_CURSOR = "api-capabilities"
CAPABILITY_RECHECK = timedelta(days=7)

# --- curated table schemas (the contract with the warehouse models) --------------------------------------------

# The user tables share their schemas with the export importers (curate/schemas.py): API rows carry source='api'.
TOP_ITEMS = curated_schemas.TOP_ITEMS
SAVED_TRACKS = curated_schemas.SAVED_TRACKS
PLAYLIST_ITEMS = curated_schemas.PLAYLIST_ITEMS
# Metadata cache (unpartitioned): one row per id, so nothing is fetched twice.
API_TRACKS = pa.schema(
    [
        ("track_id", pa.string()),
        ("track_name", pa.string()),
        ("album_id", pa.string()),
        ("album_name", pa.string()),
        ("artist_ids", pa.string()),  # ';'-joined, in credit order
        ("artist_names", pa.string()),
        ("duration_ms", pa.int64()),
        ("explicit", pa.bool_()),
        ("popularity", pa.int16()),  # null when the app may not see it (development mode)
        ("isrc", pa.string()),
        ("release_date", pa.string()),  # as Spotify gives it: YYYY, YYYY-MM or YYYY-MM-DD
        ("release_date_precision", pa.string()),
        ("fetched_at", TS),
    ]
)
API_ARTISTS = pa.schema(
    [
        ("artist_id", pa.string()),
        ("artist_name", pa.string()),
        ("genres", pa.string()),  # ';'-joined; null when unknown (development mode)
        ("popularity", pa.int16()),
        ("followers", pa.int64()),
        ("fetched_at", TS),
    ]
)
API_ALBUMS = pa.schema(
    [
        ("album_id", pa.string()),
        ("album_name", pa.string()),
        ("artist_id", pa.string()),  # primary artist
        ("release_date", pa.string()),
        ("release_date_precision", pa.string()),
        ("album_type", pa.string()),
        ("total_tracks", pa.int32()),
        ("fetched_at", TS),
    ]
)
FEATURE_FIELDS = (
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
)
API_AUDIO_FEATURES = pa.schema(
    [("track_id", pa.string())]
    + [(f, pa.int16() if f in ("key", "mode", "time_signature") else pa.float64()) for f in FEATURE_FIELDS]
    + [("fetched_at", TS)]
)
CURATED_TABLES: dict[str, pa.Schema] = {
    "top_items": TOP_ITEMS,
    "saved_tracks": SAVED_TRACKS,
    "playlist_items": PLAYLIST_ITEMS,
    "api_tracks": API_TRACKS,
    "api_artists": API_ARTISTS,
    "api_albums": API_ALBUMS,
    "api_audio_features": API_AUDIO_FEATURES,
}


class ApiForbidden(SourceError):
    """403: the app may not use this endpoint (development mode, missing scope)."""


class ApiNotFound(SourceError):
    """404: no such object."""


# --- token cache ----------------------------------------------------------------------------------------------


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
    client = SpotifyClient(ws, handle)
    me = client.call("me")
    lake = ws.lake
    manifest.register_user(lake, handle)
    write_users_table(lake)
    return {
        "user": handle,
        "spotify_id": me.get("id"),
        "display_name": me.get("display_name"),
        "country": me.get("country"),
    }


# --- the client with our retry policy ---------------------------------------------------------------------------


@dataclass
class RetryPolicy:
    retry_after_cap_s: float = 60
    max_rate_limit_waits: int = 10
    max_server_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    sleep: Callable[[float], None] = time.sleep


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
            raise SourceError(
                f"refreshing the Spotify token of {self.handle!r} failed: {exc.error}",
                hint=f"run `tunelake auth login --user {self.handle}`",
            ) from None
        self.stats["refreshed"] += 1

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import requests
        from spotipy.exceptions import SpotifyException
        from spotipy.oauth2 import SpotifyOauthError

        p = self.policy
        server_errors = rate_waits = 0
        refreshed = False
        while True:
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
            except SpotifyOauthError as exc:
                raise SourceError(
                    f"Spotify accounts service: {exc.error}: {exc.error_description}",
                    hint=f"run `tunelake auth login --user {self.handle}`",
                ) from None
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


# --- raw zone ---------------------------------------------------------------------------------------------------


@dataclass
class _Raw:
    batch_id: str
    raw_path: str
    content_hash: str
    size: int
    is_new: bool


def _store_raw(lake: Lake, handle: str, endpoint: str, params: dict[str, Any], payload: Any, now: datetime) -> _Raw:
    import hashlib

    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    content_hash = hashlib.sha256(data).hexdigest()
    batch_id = manifest.batch_id_for(SOURCE, handle, f"{endpoint}|{content_hash}")
    existing = manifest.find_batch(lake, batch_id)
    if existing is not None:
        return _Raw(batch_id, existing.raw_path, content_hash, len(data), False)
    raw = zones.raw_path(SOURCE, handle, now, batch_id, ".json")
    lake.write_bytes(raw, data)
    lake.write_json(
        zones.envelope_path(raw),
        {
            "source": SOURCE,
            "endpoint": endpoint,
            "params": params,
            "user": handle,
            "fetched_at": now.isoformat(),
            "sha256": content_hash,
            "bytes": len(data),
        },
    )
    return _Raw(batch_id, raw, content_hash, len(data), True)


def _commit(lake: Lake, raw: _Raw, handle: str, user_key: int, endpoint: str, now: datetime, **counts: Any) -> None:
    if not raw.is_new:
        return
    manifest.commit_batch(
        lake,
        Batch(
            batch_id=raw.batch_id,
            source=SOURCE,
            handle=handle,
            user_key=user_key,
            name=endpoint,
            content_hash=raw.content_hash,
            raw_path=raw.raw_path,
            imported_at=now.isoformat(),
            bytes=raw.size,
            file_format="spotify-web-api",
            **counts,
        ),
    )


# --- curation of API responses ----------------------------------------------------------------------------------


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


def play_rows(items: list[dict[str, Any]], user_key: int, batch_id: str) -> pa.Table:
    """Recently-played items → curated plays rows (source api, ms precision, ms_played = duration)."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("ended_at", "ms_played", "track_id", "track_name", "artist_name", "album_name", "record_no")
    }
    for i, item in enumerate(items):
        track = item.get("track") or {}
        if not track.get("id") or not item.get("played_at"):
            continue
        rows["ended_at"].append(_ts(item["played_at"]))
        rows["ms_played"].append(int(track.get("duration_ms") or 0))
        rows["track_id"].append(track["id"])
        rows["track_name"].append(track.get("name"))
        rows["artist_name"].append(((track.get("artists") or [{}])[0]).get("name"))
        rows["album_name"].append((track.get("album") or {}).get("name"))
        rows["record_no"].append(i)
    n = len(rows["ended_at"])
    table = pa.table(
        {
            "user_key": pa.array([user_key] * n, pa.int64()),
            "ended_at": pa.array(rows["ended_at"], TS),
            "ts_precision": pa.array(["ms"] * n, pa.string()),
            "ms_played": pa.array(rows["ms_played"], pa.int64()),
            "content_type": pa.array(["track"] * n, pa.string()),
            "media_type": pa.array(["audio"] * n, pa.string()),
            "track_id": pa.array(rows["track_id"], pa.string()),
            "track_name": pa.array(rows["track_name"], pa.string()),
            "artist_name": pa.array(rows["artist_name"], pa.string()),
            "album_name": pa.array(rows["album_name"], pa.string()),
            "source": pa.array([SOURCE] * n, pa.string()),
            "batch_id": pa.array([batch_id] * n, pa.string()),
            "record_no": pa.array(rows["record_no"], pa.int32()),
        }
    )
    return curated_plays.conform(table)


def find_overlaps(
    existing: pa.Table, incoming: pa.Table, tolerance_s: float, exclude_sources: tuple[str, ...] = (SOURCE, "account")
) -> list[bool]:
    """For each incoming play: is it the same playback as an existing one (same track, end within tolerance)?

    Matching is one-to-one: an existing playback absorbs at most one incoming play. Existing rows of
    `exclude_sources` are not candidates: API plays among themselves are deduplicated by their playback id, and
    account-data rows (minute precision, no track URI) are matched by `merge_plays` with the `curate.overlap` rule.
    """
    tol = int(tolerance_s * 1000)
    by_track: dict[str, list[int]] = {}
    if existing.num_rows:
        ex = existing
        if exclude_sources:
            ex = ex.filter(pc.invert(pc.fill_null(pc.is_in(ex["source"], pa.array(list(exclude_sources))), False)))
        ex = ex.filter(pc.is_valid(ex["track_id"]))
        for tid, ms in zip(ex["track_id"].to_pylist(), pc.cast(ex["ended_at"], pa.int64()).to_pylist(), strict=True):
            if ms is not None:
                by_track.setdefault(tid, []).append(ms)
        for v in by_track.values():
            v.sort()
    used: set[tuple[str, int]] = set()
    out = []
    for tid, ms in zip(
        incoming["track_id"].to_pylist(), pc.cast(incoming["ended_at"], pa.int64()).to_pylist(), strict=True
    ):
        cands = by_track.get(tid) or []
        hit = False
        if ms is not None and cands:
            i = bisect.bisect_left(cands, ms - tol)
            best = None
            while i < len(cands) and cands[i] <= ms + tol:
                if (tid, cands[i]) not in used and (best is None or abs(cands[i] - ms) < abs(best - ms)):
                    best = cands[i]
                i += 1
            if best is not None:
                used.add((tid, best))
                hit = True
        out.append(hit)
    return out


def _read_user_table(lake: Lake, table: str, user_key: int, schema: pa.Schema) -> pa.Table:
    rel = zones.curated_user_file(table, user_key)
    return curated_plays.conform(lake.read_parquet(rel), schema) if lake.exists(rel) else schema.empty_table()


def _replace_rows(
    lake: Lake, table: str, user_key: int, schema: pa.Schema, keep: Callable[[pa.Table], pa.Array], new: pa.Table
) -> None:
    old = _read_user_table(lake, table, user_key, schema)
    kept = old.filter(keep(old)) if old.num_rows else old
    lake.write_parquet(
        zones.curated_user_file(table, user_key), pa.concat_tables([kept, curated_plays.conform(new, schema)])
    )


def _not_api(t: pa.Table) -> pa.Array:
    return pc.invert(pc.fill_null(pc.equal(t["source"], SOURCE), False))


# --- pull -------------------------------------------------------------------------------------------------------


@dataclass
class PullResult:
    user: str
    pages: int = 0
    plays_read: int = 0
    plays_new: int = 0
    duplicates: int = 0
    merged: int = 0  # API plays that are the same playback as an export play already in the lake
    top_items: int = 0
    saved_tracks: int = 0
    playlists: int = 0
    playlist_items: int = 0
    enriched: dict[str, int] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    cursor: int | None = None
    calls: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recent_cursor_name(handle: str) -> str:
    return f"api-recently-played-{handle}"


def pull(
    ws: Workspace,
    handle: str,
    what: Iterable[str] = WHAT_ALL,
    *,
    policy: RetryPolicy | None = None,
    page_hook: Callable[[int], None] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PullResult:
    """Pull a logged-in user's data from the API into the lake (raw → curated), incrementally where possible."""
    what = list(what)
    unknown = set(what) - set(WHAT_ALL)
    if unknown:
        raise ConfigError(
            f"unknown --what item(s): {', '.join(sorted(unknown))}", hint=f"choose from {','.join(WHAT_ALL)}"
        )
    zones.check_handle(handle)
    client = SpotifyClient(ws, handle, policy)
    with ws.writing(command=f"pull --user {handle}"):
        return _pull(ws, client, handle, what, page_hook, progress)


def _pull(ws: Workspace, client: SpotifyClient, handle: str, what: list[str],
          page_hook: Callable[[int], None] | None, progress: Callable[[int, int, str], None] | None) -> PullResult:
    """`pull` under the workspace lock. Each recently-played page is one commit (its raw response, curated rows,
    manifest entry and the cursor past it); each snapshot (top items, saved tracks, playlists, enrichment) is one
    commit of all its pages, so a pull stopped at any point keeps exactly what it finished."""
    lake = ws.lake
    with lake.transaction(f"pull {handle}: user"):
        user_key = manifest.register_user(lake, handle)["user_key"]
        write_users_table(lake)  # the curated users table mirrors the manifest (dim_user)
    result = PullResult(handle)
    seen_tracks: dict[str, dict[str, Any]] = {}
    top_artists: dict[str, dict[str, Any]] = {}
    for step, name in enumerate(what):
        if progress:
            progress(step, len(what), name)
        if name == "recent":
            _pull_recent(ws, client, lake, handle, user_key, result, seen_tracks, page_hook)
            continue
        with lake.transaction(f"pull {handle}: {name}"):
            if name == "profile":
                me = client.call("me")
                now = utcnow()
                raw = _store_raw(lake, handle, "me", {}, me, now)
                _commit(lake, raw, handle, user_key, "me", now)
            elif name == "top":
                _pull_top(client, lake, handle, user_key, result, seen_tracks, top_artists)
            elif name == "saved":
                _pull_saved(client, lake, handle, user_key, result, seen_tracks)
            elif name == "playlists":
                _pull_playlists(client, lake, handle, user_key, result, seen_tracks)
            elif name == "enrich":
                enrich(client, lake, user_key, result, seen_tracks, top_artists)
    if progress:
        progress(len(what), len(what), "done")
    result.calls = dict(client.stats)
    return result


def _pull_recent(
    ws: Workspace,
    client: SpotifyClient,
    lake: Lake,
    handle: str,
    user_key: int,
    result: PullResult,
    seen: dict[str, dict[str, Any]],
    page_hook: Callable[[int], None] | None,
) -> None:
    name = recent_cursor_name(handle)
    after = manifest.get_cursor(lake, name) or 0
    while True:
        page = client.call("current_user_recently_played", limit=50, after=after)
        items = page.get("items") or []
        if not items:
            break
        with lake.transaction(f"pull {handle}: recently-played after {after}"):
            after = _recent_page(ws, lake, handle, user_key, result, seen, page, items, after)
        if page_hook:
            page_hook(result.pages)
        if not page.get("next"):
            break


def _recent_page(ws: Workspace, lake: Lake, handle: str, user_key: int, result: PullResult,
                 seen: dict[str, dict[str, Any]], page: dict[str, Any], items: list[dict[str, Any]],
                 after: int) -> int:
    """One recently-played page into the lake (inside the caller's transaction); returns the new cursor."""
    name = recent_cursor_name(handle)
    now = utcnow()
    raw = _store_raw(lake, handle, "me/player/recently-played", {"after": after, "limit": 50}, page, now)
    for item in items:
        if (item.get("track") or {}).get("id"):
            seen[item["track"]["id"]] = item["track"]
    rows = play_rows(items, user_key, raw.batch_id)
    existing = curated_plays.read_user_plays(lake, user_key)
    same = find_overlaps(existing, rows, ws.settings.overlap_tolerance_s)
    merged = sum(same)
    fresh = rows.filter(pa.array([not s for s in same], pa.bool_()))
    dups = 0
    if fresh.num_rows:
        m = curated_plays.merge_plays(lake, user_key, fresh, tolerance_s=ws.settings.overlap_tolerance_s)
        dups = m.duplicates_by_batch.get(raw.batch_id, 0)
        merged += m.merged_by_batch.get(raw.batch_id, 0)  # same playback as an account-data row
    new = rows.num_rows - dups - merged
    _commit(
        lake,
        raw,
        handle,
        user_key,
        "me/player/recently-played",
        now,
        read=len(items),
        accepted=new,
        duplicates=dups,
        merged=merged,
    )
    result.pages += 1
    result.plays_read += len(items)
    result.plays_new += new
    result.duplicates += dups
    result.merged += merged
    cursors = page.get("cursors") or {}
    newest = int(
        cursors.get("after") or max(int(_ts(i["played_at"]).replace(tzinfo=UTC).timestamp() * 1000) for i in items)
    )
    # The cursor moves in the same commit as the data it covers.
    manifest.set_cursor(lake, name, newest)
    result.cursor = newest
    return newest


def _pull_top(
    client: SpotifyClient,
    lake: Lake,
    handle: str,
    user_key: int,
    result: PullResult,
    seen: dict[str, dict[str, Any]],
    top_artists: dict[str, dict[str, Any]],
) -> None:
    today = utcnow().date()
    cols: dict[str, list[Any]] = {k: [] for k in TOP_ITEMS.names}
    raws = []
    for kind, method in (("artist", "current_user_top_artists"), ("track", "current_user_top_tracks")):
        for tr in TIME_RANGES:
            page = client.call(method, limit=50, offset=0, time_range=tr)
            _keep_page(lake, handle, raws, f"me/top/{kind}s", {"time_range": tr, "limit": 50}, page)
            for rank, obj in enumerate(page.get("items") or [], start=1):
                if not obj or not obj.get("id"):
                    continue
                (seen if kind == "track" else top_artists)[obj["id"]] = obj
                for k, v in (
                    ("user_key", user_key),
                    ("snapshot_date", today),
                    ("time_range", tr),
                    ("item_type", kind),
                    ("rank", rank),
                    ("item_id", obj["id"]),
                    ("item_name", obj.get("name")),
                ):
                    cols[k].append(v)
    table = pa.table(cols, schema=TOP_ITEMS)
    _replace_rows(
        lake,
        "top_items",
        user_key,
        TOP_ITEMS,
        lambda t: pc.not_equal(t["snapshot_date"], pa.scalar(today, pa.date32())),
        table,
    )
    _commit_pages(lake, handle, user_key, raws)
    result.top_items = table.num_rows


def _keep_page(
    lake: Lake, handle: str, raws: list[tuple[_Raw, str, datetime, int]], endpoint: str, params: dict[str, Any],
    page: dict[str, Any],
) -> _Raw:
    """Store a snapshot page's raw JSON now, and note it in `raws` for `_commit_pages`.

    The manifest entry waits: a page counts as imported only once the curated table holding its rows is written,
    so a pull that fails before that leaves no page marked as imported.
    """
    now = utcnow()
    raw = _store_raw(lake, handle, endpoint, params, page, now)
    raws.append((raw, endpoint, now, len(page.get("items") or [])))
    return raw


def _commit_pages(lake: Lake, handle: str, user_key: int, raws: list[tuple[_Raw, str, datetime, int]]) -> None:
    """Commit the pages `_keep_page` stored, after their rows are in the curated table; each item is a row."""
    for raw, endpoint, now, n in raws:
        _commit(lake, raw, handle, user_key, endpoint, now, read=n, accepted=n)


def _paged(client: SpotifyClient, first: dict[str, Any]) -> Iterable[dict[str, Any]]:
    page: dict[str, Any] | None = first
    while page:
        yield page
        page = client.call("next", page) if page.get("next") else None


def _pull_saved(
    client: SpotifyClient, lake: Lake, handle: str, user_key: int, result: PullResult, seen: dict[str, dict[str, Any]]
) -> None:
    rows: list[dict[str, Any]] = []
    raws = []
    for page in _paged(client, client.call("current_user_saved_tracks", limit=50)):
        raw = _keep_page(lake, handle, raws, "me/tracks", {"offset": page.get("offset")}, page)
        for item in page.get("items") or []:
            track = item.get("track") or {}
            if not track.get("id"):
                continue
            seen[track["id"]] = track
            rows.append(
                {
                    "user_key": user_key,
                    "track_id": track["id"],
                    "track_name": track.get("name"),
                    "artist_name": ((track.get("artists") or [{}])[0]).get("name"),
                    "album_name": (track.get("album") or {}).get("name"),
                    "saved_at": _ts(item.get("added_at")),
                    "source": SOURCE,
                    "item_type": "track",
                    "item_id": track["id"],
                    "item_name": track.get("name"),
                    "batch_id": raw.batch_id,
                }
            )
    table = pa.Table.from_pylist(rows, schema=SAVED_TRACKS)
    _replace_rows(lake, "saved_tracks", user_key, SAVED_TRACKS, _not_api, table)
    _commit_pages(lake, handle, user_key, raws)
    result.saved_tracks = table.num_rows


def _pull_playlists(
    client: SpotifyClient, lake: Lake, handle: str, user_key: int, result: PullResult, seen: dict[str, dict[str, Any]]
) -> None:
    rows: list[dict[str, Any]] = []
    raws = []
    for page in _paged(client, client.call("current_user_playlists", limit=50)):
        _keep_page(lake, handle, raws, "me/playlists", {"offset": page.get("offset")}, page)
        for pl in page.get("items") or []:
            if not pl or not pl.get("id"):
                continue
            result.playlists += 1
            position = 0
            first = client.call("playlist_items", pl["id"], limit=100, additional_types=("track",))
            for ipage in _paged(client, first):
                endpoint = f"playlists/{pl['id']}/items"
                raw = _keep_page(lake, handle, raws, endpoint, {"offset": ipage.get("offset")}, ipage)
                for item in ipage.get("items") or []:
                    obj = item.get("item") or item.get("track") or {}
                    kind = obj.get("type") or "track"
                    if kind == "track" and obj.get("id"):
                        seen[obj["id"]] = obj
                    rows.append(
                        {
                            "user_key": user_key,
                            "playlist_id": pl["id"],
                            "playlist_name": pl.get("name"),
                            "position": position,
                            "item_type": kind,
                            "track_id": obj.get("id") if kind == "track" else None,
                            "track_name": obj.get("name"),
                            "artist_name": ((obj.get("artists") or [{}])[0]).get("name"),
                            "album_name": (obj.get("album") or {}).get("name"),
                            "added_at": _ts(item.get("added_at")),
                            "source": SOURCE,
                            "item_id": obj.get("id"),
                            "batch_id": raw.batch_id,
                        }
                    )
                    position += 1
    table = pa.Table.from_pylist(rows, schema=PLAYLIST_ITEMS)
    _replace_rows(lake, "playlist_items", user_key, PLAYLIST_ITEMS, _not_api, table)
    _commit_pages(lake, handle, user_key, raws)
    result.playlist_items = table.num_rows


# --- enrichment -------------------------------------------------------------------------------------------------


def _cache(lake: Lake, table: str) -> pa.Table:
    rel = zones.curated_file(table)
    schema = CURATED_TABLES[table]
    return curated_plays.conform(lake.read_parquet(rel), schema) if lake.exists(rel) else schema.empty_table()


def _cache_add(lake: Lake, table: str, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    schema = CURATED_TABLES[table]
    old = _cache(lake, table)
    new = pa.Table.from_pylist(rows, schema=schema)
    key = schema.names[0]
    have = set(old[key].to_pylist())
    new = new.filter(pa.array([k not in have for k in new[key].to_pylist()], pa.bool_()))
    if new.num_rows:
        lake.write_parquet(zones.curated_file(table), pa.concat_tables([old, new]))
    return new.num_rows


def _track_row(t: dict[str, Any], now: datetime) -> dict[str, Any]:
    album = t.get("album") or {}
    artists = t.get("artists") or []
    return {
        "track_id": t["id"],
        "track_name": t.get("name"),
        "album_id": album.get("id"),
        "album_name": album.get("name"),
        "artist_ids": ";".join(a.get("id") or "" for a in artists),
        "artist_names": ";".join(a.get("name") or "" for a in artists),
        "duration_ms": t.get("duration_ms"),
        "explicit": t.get("explicit"),
        "popularity": t.get("popularity"),
        "isrc": (t.get("external_ids") or {}).get("isrc"),
        "release_date": album.get("release_date"),
        "release_date_precision": album.get("release_date_precision"),
        "fetched_at": now,
    }


def _artist_row(a: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "artist_id": a["id"],
        "artist_name": a.get("name"),
        "genres": ";".join(a["genres"]) if "genres" in a else None,
        "popularity": a.get("popularity"),
        "followers": (a.get("followers") or {}).get("total"),
        "fetched_at": now,
    }


def _album_row(a: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "album_id": a["id"],
        "album_name": a.get("name"),
        "artist_id": ((a.get("artists") or [{}])[0]).get("id"),
        "release_date": a.get("release_date"),
        "release_date_precision": a.get("release_date_precision"),
        "album_type": a.get("album_type"),
        "total_tracks": a.get("total_tracks"),
        "fetched_at": now,
    }


def _features_row(f: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"track_id": f["id"], **{k: f.get(k) for k in FEATURE_FIELDS}, "fetched_at": now}


def capabilities(lake: Lake) -> dict[str, Any]:
    """What this app may use: `batch_metadata` and `audio_features` (False after a 403, rechecked weekly)."""
    caps = manifest.get_cursor(lake, CAPABILITIES_CURSOR) or {}
    checked = caps.get("checked_at")
    if checked and datetime.fromisoformat(checked) < utcnow() - CAPABILITY_RECHECK:
        return {}
    return caps


def _mark_unavailable(lake: Lake, feature: str, result: PullResult) -> None:
    caps = manifest.get_cursor(lake, CAPABILITIES_CURSOR) or {}
    caps[feature] = False
    caps["checked_at"] = utcnow().isoformat()
    manifest.set_cursor(lake, CAPABILITIES_CURSOR, caps)
    if feature not in result.unavailable:
        result.unavailable.append(feature)


def _fetch(
    client: SpotifyClient,
    lake: Lake,
    result: PullResult,
    ids: list[str],
    batch_method: str,
    key: str,
    single_method: str,
    size: int,
) -> list[dict[str, Any]]:
    """Batch where allowed; on 403 mark batch metadata unavailable and fall back to single-item calls."""
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(ids) and capabilities(lake).get("batch_metadata", True):
        chunk = ids[i : i + size]
        try:
            out.extend(o for o in client.call(batch_method, chunk)[key] if o)
        except ApiForbidden:
            _mark_unavailable(lake, "batch_metadata", result)
            break
        i += size
    for one in ids[i:]:
        try:
            out.append(client.call(single_method, one))
        except ApiNotFound:
            continue
    return out


def enrich(
    client: SpotifyClient,
    lake: Lake,
    user_key: int,
    result: PullResult,
    seen_tracks: dict[str, dict[str, Any]] | None = None,
    seen_artists: dict[str, dict[str, Any]] | None = None,
) -> dict[str, int]:
    """Describe every track, album and artist the user's data mentions and the cache does not know yet."""
    now = utcnow()
    counts = {"tracks": 0, "artists": 0, "albums": 0, "audio_features": 0}
    known_tracks = set(_cache(lake, "api_tracks")["track_id"].to_pylist())
    # Track objects embedded in responses describe themselves: no call needed.
    embedded = [
        _track_row(t, now) for tid, t in (seen_tracks or {}).items() if tid not in known_tracks and t.get("album")
    ]
    counts["tracks"] += _cache_add(lake, "api_tracks", embedded)
    wanted: set[str] = set()
    plays = curated_plays.read_user_plays(lake, user_key)
    wanted.update(t for t in plays["track_id"].to_pylist() if t)
    for table, schema in (("saved_tracks", SAVED_TRACKS), ("playlist_items", PLAYLIST_ITEMS)):
        wanted.update(t for t in _read_user_table(lake, table, user_key, schema)["track_id"].to_pylist() if t)
    known_tracks = set(_cache(lake, "api_tracks")["track_id"].to_pylist())
    missing = sorted(wanted - known_tracks)
    if missing:
        fetched = _fetch(client, lake, result, missing, "tracks", "tracks", "track", 50)
        counts["tracks"] += _cache_add(lake, "api_tracks", [_track_row(t, now) for t in fetched if t.get("id")])
    tracks = _cache(lake, "api_tracks")
    # Artists: from the tracks' credits (and top artists, which arrive fully described).
    known_artists = set(_cache(lake, "api_artists")["artist_id"].to_pylist())
    embedded_artists = [_artist_row(a, now) for aid, a in (seen_artists or {}).items() if aid not in known_artists]
    counts["artists"] += _cache_add(lake, "api_artists", embedded_artists)
    known_artists = set(_cache(lake, "api_artists")["artist_id"].to_pylist())
    artist_ids = {a for s in tracks["artist_ids"].to_pylist() if s for a in s.split(";") if a}
    missing = sorted(artist_ids - known_artists)
    if missing:
        fetched = _fetch(client, lake, result, missing, "artists", "artists", "artist", 50)
        counts["artists"] += _cache_add(lake, "api_artists", [_artist_row(a, now) for a in fetched if a.get("id")])
    known_albums = set(_cache(lake, "api_albums")["album_id"].to_pylist())
    missing = sorted({a for a in tracks["album_id"].to_pylist() if a} - known_albums)
    if missing:
        fetched = _fetch(client, lake, result, missing, "albums", "albums", "album", 20)
        counts["albums"] += _cache_add(lake, "api_albums", [_album_row(a, now) for a in fetched if a.get("id")])
    if capabilities(lake).get("audio_features", True):
        known = set(_cache(lake, "api_audio_features")["track_id"].to_pylist())
        missing = sorted(set(tracks["track_id"].to_pylist()) - known)
        rows = []
        try:
            for i in range(0, len(missing), 100):
                rows.extend(_features_row(f, now) for f in client.call("audio_features", missing[i : i + 100]) if f)
        except ApiForbidden:
            _mark_unavailable(lake, "audio_features", result)
        counts["audio_features"] += _cache_add(lake, "api_audio_features", rows)
    else:
        result.unavailable.append("audio_features")
    if not capabilities(lake).get("batch_metadata", True) and "batch_metadata" not in result.unavailable:
        result.unavailable.append("batch_metadata")
    result.enriched = counts
    return counts


# --- write back -------------------------------------------------------------------------------------------------


def push_playlist(
    ws: Workspace,
    handle: str,
    name: str,
    track_ids: list[str],
    *,
    public: bool = False,
    description: str = "Made by tunelake",
    policy: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Create the user's playlist `name`, or replace the items of the one that exists, with `track_ids`."""
    if not name.strip():
        raise ConfigError("a playlist needs a name", hint="pass --name")
    ids = []
    for raw in track_ids:
        raw = raw.strip()
        if not raw:
            continue
        tid = raw.rsplit(":", 1)[-1].rsplit("/", 1)[-1].split("?")[0]
        if len(tid) != 22 or not tid.isalnum():
            raise SourceError(f"not a Spotify track id: {raw!r}")
        ids.append(tid)
    client = SpotifyClient(ws, handle, policy)
    me = client.call("me")
    existing = None
    for page in _paged(client, client.call("current_user_playlists", limit=50)):
        for pl in page.get("items") or []:
            if pl and pl.get("name") == name and (pl.get("owner") or {}).get("id") == me.get("id"):
                existing = pl
                break
        if existing:
            break
    created = existing is None
    if created:
        existing = client.call("current_user_playlist_create", name, public=public, description=description)
    pid = existing["id"]
    uris = [f"spotify:track:{t}" for t in ids]
    client.call("playlist_replace_items", pid, uris[:100])
    for i in range(100, len(uris), 100):
        client.call("playlist_add_items", pid, uris[i : i + 100])
    return {"user": handle, "playlist_id": pid, "name": name, "created": created, "tracks": len(ids)}


# --- demo over the API ------------------------------------------------------------------------------------------
