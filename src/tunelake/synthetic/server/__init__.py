"""A local fake of the Spotify Web API and accounts service, backed by a synthetic world directory.

The API view of a listener agrees with the export files the world generator wrote for them:

- recently played = the listener's extended-history track plays (`played_at` = the export's `ts` plus a
  deterministic sub-second part, because the real API has millisecond precision and exports have seconds);
- saved tracks = `YourLibrary.json`, playlists = `Playlist1.json` (plus playlists created through the API);
- top artists/tracks = play counts over the last 4 weeks / 6 months / all time before the world's end date;
- catalogue objects = `catalog/*.parquet`.

Paging of `recently-played` differs from the real service in one respect, on purpose: with `after`, the fake
returns the *oldest* `limit` plays after the cursor (newest first inside the page) and a `next` link, so a client
can walk the whole history forward; the real API only ever exposes the last 50 plays (`recent_limit=50` makes the
fake do that too).

Modes: full access, or development mode (`dev_mode=True`) where batch `GET /tracks|albums|artists?ids=` and
`/audio-features` answer 403 as they do for new apps, genres/popularity/followers are omitted, and at most 5
listeners may authorise the app. Faults are injected at run time with `FakeSpotify.faults` (Python) or the
`/_fault` admin endpoint (HTTP): 429 with Retry-After, 5xx bursts, slow responses, expiring tokens.

Use it in-process (`with FakeSpotify(world_dir) as srv: srv.url`) or as `tunelake fake-spotify --world DIR`.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tunelake.synthetic.server import faults as _faults
from tunelake.synthetic.server.accounts import DEV_MODE_MAX_USERS, Accounts
from tunelake.synthetic.server.faults import FaultRule, Faults, parse_fault_spec
from tunelake.synthetic.server.responses import ApiError, error_response, json_response
from tunelake.synthetic.server.world_view import (
    Listener,
    World,
    base62_id,
    iso_ms,
    iso_s,
    split_ids,
    uri_id,
)

TIME_RANGES = {"short_term": 28, "medium_term": 182, "long_term": None}
OPEN = "https://open.spotify.com"


# --- the server -----------------------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log: URLs may carry auth codes
        pass


class FakeSpotify:
    """The fake Web API (`/v1/…`) and accounts service (`/authorize`, `/api/token`) on one loopback port."""

    def __init__(
        self,
        world_dir: str | Path,
        *,
        dev_mode: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_approve: bool = True,
        recent_limit: int | None = None,
        token_expires_in: int = 3600,
    ) -> None:
        self.world = World(world_dir)
        self.dev_mode = dev_mode
        self.host, self.port = host, port
        self.auto_approve = auto_approve
        self.recent_limit = recent_limit
        self.token_expires_in = token_expires_in
        self.visible_until_ms: int | None = None  # plays after this are "in the future" (tests move it)
        self.faults = Faults()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self.accounts = Accounts()
        self._lock = threading.RLock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/v1/"

    @property
    def accounts_url(self) -> str:
        return self.url

    def start(self) -> FakeSpotify:
        self._server = make_server(self.host, self.port, self.wsgi, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-spotify", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server = make_server(self.host, self.port, self.wsgi, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._server.serve_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSpotify:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- runtime controls -------------------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on (refresh tokens stay valid)."""
        self.accounts.expire_all()

    def apply_faults(self, items: list[dict[str, Any]]) -> None:
        _faults.apply_faults(self.faults, items, self.expire_tokens)

    def count(self, path_part: str, status: int | None = None, method: str = "GET") -> int:
        return sum(
            1 for m, p, s in list(self.requests) if m == method and path_part in p and (status is None or s == status)
        )

    # --- WSGI -------------------------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except ApiError as exc:
            response = error_response(exc)
        except Exception as exc:  # a bug in the fake: answer like the real service would, and say what broke
            response = json_response({"error": {"status": 500, "message": f"fake server error: {exc!r}"}}, 500)
        self.requests.append((request.method, request.path, response.status_code))
        return response(environ, start_response)

    def _dispatch(self, req: Request) -> Response:
        path = req.path
        if path.startswith("/_fault"):
            return self._admin(req)
        if path == "/authorize":
            return self.accounts.authorize(
                req, handles=self.world.handles, dev_mode=self.dev_mode, auto_approve=self.auto_approve
            )
        if path == "/api/token":
            ttl = self.faults.token_ttl if self.faults.token_ttl is not None else self.token_expires_in
            return self.accounts.token(req, ttl=ttl, expires_in=self.token_expires_in)
        if not path.startswith("/v1/"):
            raise ApiError(404, "Service not found")
        _faults.inject(self.faults, path)
        handle = self.accounts.listener_for(req)
        base = req.host_url.rstrip("/")
        return json_response(*_Api(self, handle, base, req).route(path[len("/v1") :]))

    # --- admin ------------------------------------------------------------------------------------------------
    def _admin(self, req: Request) -> Response:
        return _faults.admin(req, self.faults, expire_tokens=self.expire_tokens, requests_seen=len(self.requests))


class _Api:
    """One API request: routing and the Spotify object shapes."""

    def __init__(self, srv: FakeSpotify, handle: str, base: str, req: Request) -> None:
        self.srv, self.world, self.handle, self.base, self.req = srv, srv.world, handle, base, req
        self.dev = srv.dev_mode

    # --- routing ----------------------------------------------------------------------------------------------
    def route(self, path: str) -> tuple[Any, int]:
        m = self.req.method
        parts = [p for p in path.split("/") if p]
        q = self.req.args
        if m == "GET":
            if parts == ["me"]:
                return self.me(), 200
            if parts == ["me", "player", "recently-played"]:
                return self.recently_played(), 200
            if len(parts) == 3 and parts[:2] == ["me", "top"] and parts[2] in ("artists", "tracks"):
                return self.top(parts[2]), 200
            if parts == ["me", "tracks"]:
                return self.saved(), 200
            if parts == ["me", "playlists"] or (len(parts) == 3 and parts[0] == "users" and parts[2] == "playlists"):
                return self.playlists(), 200
            if len(parts) == 3 and parts[0] == "playlists" and parts[2] in ("items", "tracks"):
                return self.playlist_items(parts[1]), 200
            if len(parts) == 2 and parts[0] == "playlists":
                return self.playlist_full(parts[1]), 200
            kinds = {
                "tracks": (self.track, 50),
                "albums": (self.album, 20),
                "artists": (self.artist, 50),
                "audio-features": (self.features, 100),
            }
            if parts and parts[0] in kinds:
                fn, max_ids = kinds[parts[0]]
                if len(parts) == 1 and "ids" in q:
                    return self.batch(parts[0], fn, q.get("ids", ""), max_ids), 200
                if len(parts) == 2:
                    if parts[0] == "audio-features" and self.dev:
                        raise ApiError(403, "Forbidden")
                    obj = fn(parts[1])
                    if obj is None:
                        raise ApiError(404, "Resource not found" if parts[0] != "tracks" else "Non existing id")
                    return obj, 200
                raise ApiError(400, "Missing required field: ids")
        if m == "POST":
            if parts == ["me", "playlists"] or (len(parts) == 3 and parts[0] == "users" and parts[2] == "playlists"):
                if parts[0] == "users" and parts[1] != self.handle:
                    raise ApiError(403, "You cannot create a playlist for another user")
                return self.create_playlist(), 201
            if len(parts) == 3 and parts[0] == "playlists" and parts[2] in ("items", "tracks"):
                return self.add_items(parts[1]), 201
        if m == "PUT" and len(parts) == 3 and parts[0] == "playlists" and parts[2] in ("items", "tracks"):
            return self.replace_items(parts[1]), 200
        raise ApiError(404, "Service not found")

    # --- helpers ----------------------------------------------------------------------------------------------
    def _limit(self, default: int, maximum: int) -> int:
        raw = self.req.args.get("limit")
        try:
            limit = int(raw) if raw not in (None, "") else default
        except ValueError:
            raise ApiError(400, "Invalid limit") from None
        if not 1 <= limit <= maximum:
            raise ApiError(400, "Invalid limit")
        return limit

    def _offset(self) -> int:
        try:
            offset = int(self.req.args.get("offset") or 0)
        except ValueError:
            raise ApiError(400, "Invalid offset") from None
        if offset < 0:
            raise ApiError(400, "Invalid offset")
        return offset

    def _href(self, path: str, **params: Any) -> str:
        params = {k: v for k, v in params.items() if v is not None}
        return f"{self.base}/v1{path}" + (f"?{urlencode(params)}" if params else "")

    def _page(self, path: str, items: list[Any], total: int, limit: int, offset: int, **extra: Any) -> dict:
        nxt = self._href(path, offset=offset + limit, limit=limit, **extra) if offset + limit < total else None
        prev = self._href(path, offset=max(0, offset - limit), limit=limit, **extra) if offset > 0 else None
        return {
            "href": self._href(path, offset=offset, limit=limit, **extra),
            "items": items,
            "limit": limit,
            "next": nxt,
            "offset": offset,
            "previous": prev,
            "total": total,
        }

    def _ext(self, kind: str, id_: str) -> dict[str, Any]:
        return {
            "external_urls": {"spotify": f"{OPEN}/{kind}/{id_}"},
            "href": self._href(f"/{kind}s/{id_}"),
            "id": id_,
            "type": kind,
            "uri": f"spotify:{kind}:{id_}",
        }

    # --- catalogue objects ------------------------------------------------------------------------------------
    def artist_simple(self, artist_id: str, name: str | None = None) -> dict[str, Any]:
        a = self.world.artists.get(artist_id) or {}
        return {**self._ext("artist", artist_id), "name": a.get("artist_name") or name or ""}

    def artist(self, artist_id: str) -> dict[str, Any] | None:
        a = self.world.artists.get(artist_id)
        if a is None:
            return None
        obj = {**self.artist_simple(artist_id), "images": []}
        if not self.dev:
            obj["genres"] = split_ids(a.get("genres"))
            obj["popularity"] = int(a.get("popularity") or 0)
            obj["followers"] = {"href": None, "total": int(a.get("followers") or 0)}
        return obj

    def _album_base(self, album_id: str) -> dict[str, Any] | None:
        al = self.world.albums.get(album_id)
        if al is None:
            return None
        return {
            **self._ext("album", album_id),
            "album_type": al.get("album_type") or "album",
            "total_tracks": int(al.get("total_tracks") or len(self.world.album_tracks.get(album_id, []))),
            "available_markets": [],
            "images": [],
            "name": al.get("album_name") or "",
            "release_date": str(al.get("release_date") or "1970"),
            "release_date_precision": al.get("release_date_precision") or "year",
            "artists": [self.artist_simple(al["artist_id"])] if al.get("artist_id") else [],
        }

    def album(self, album_id: str) -> dict[str, Any] | None:
        obj = self._album_base(album_id)
        if obj is None:
            return None
        ids = self.world.album_tracks.get(album_id, [])
        items = [self.track(t, simplified=True) for t in ids[:50]]
        obj.update(
            {
                "tracks": self._page(f"/albums/{album_id}/tracks", items, len(ids), 50, 0),
                "copyrights": [],
                "external_ids": {},
                "genres": [],
                "label": "tunelake synthetic",
                "popularity": 0
                if self.dev
                else int(max((self.world.tracks[t].get("popularity") or 0) for t in ids) if ids else 0),
            }
        )
        return obj

    def track(self, track_id: str, simplified: bool = False) -> dict[str, Any] | None:
        t = self.world.tracks.get(track_id)
        if t is None:
            return None
        names = split_ids(t.get("artist_names"))
        artists = [
            self.artist_simple(a, names[i] if i < len(names) else None)
            for i, a in enumerate(split_ids(t.get("artist_ids")))
        ]
        obj = {
            **self._ext("track", track_id),
            "artists": artists,
            "available_markets": [],
            "disc_number": 1,
            "duration_ms": int(t.get("duration_ms") or 0),
            "explicit": bool(t.get("explicit")),
            "is_local": False,
            "is_playable": True,
            "name": t.get("track_name") or "",
            "preview_url": None,
            "track_number": self.world.track_number.get(track_id, 1),
        }
        if simplified:
            return obj
        album = self._album_base(t.get("album_id") or "") or {
            **self._ext("album", t.get("album_id") or base62_id("album|" + track_id)),
            "album_type": "album",
            "total_tracks": 1,
            "available_markets": [],
            "images": [],
            "name": t.get("album_name") or "",
            "release_date": str(t.get("release_date") or "1970"),
            "release_date_precision": t.get("release_date_precision") or "year",
            "artists": artists[:1],
        }
        obj["album"] = album
        obj["external_ids"] = {"isrc": t["isrc"]} if t.get("isrc") else {}
        if not self.dev:
            obj["popularity"] = int(t.get("popularity") or 0)
        return obj

    def features(self, track_id: str) -> dict[str, Any] | None:
        t = self.world.tracks.get(track_id)
        if t is None or t.get("danceability") is None:
            return None
        obj: dict[str, Any] = {
            k: t.get(k)
            for k in (
                "danceability",
                "energy",
                "loudness",
                "speechiness",
                "acousticness",
                "instrumentalness",
                "liveness",
                "valence",
                "tempo",
            )
        }
        obj = {k: float(v) for k, v in obj.items() if v is not None}
        for k in ("key", "mode", "time_signature"):
            if t.get(k) is not None:
                obj[k] = int(t[k])
        obj.update(
            {
                "id": track_id,
                "type": "audio_features",
                "uri": f"spotify:track:{track_id}",
                "track_href": self._href(f"/tracks/{track_id}"),
                "analysis_url": self._href(f"/audio-analysis/{track_id}"),
                "duration_ms": int(t.get("duration_ms") or 0),
            }
        )
        return obj

    def batch(self, kind: str, fn: Any, ids_param: str, max_ids: int) -> dict[str, Any]:
        if self.dev:
            raise ApiError(403, "Forbidden")
        ids = [i for i in ids_param.split(",") if i]
        if not ids:
            raise ApiError(400, "Missing required field: ids")
        if len(ids) > max_ids:
            raise ApiError(400, "Too many ids requested")
        return {kind.replace("-", "_"): [fn(i) for i in ids]}

    # --- the user's data --------------------------------------------------------------------------------------
    @property
    def listener(self) -> Listener:
        return self.world.listener(self.handle)

    def me(self) -> dict[str, Any]:
        lst = self.listener
        obj = {
            **self._ext("user", self.handle),
            "display_name": self.handle,
            "images": [],
            "followers": {"href": None, "total": 0},
            "product": "premium",
        }
        obj["href"] = self._href(f"/users/{self.handle}")
        if lst.country:
            obj["country"] = lst.country
        return obj

    def _visible_plays(self) -> list[tuple[int, str]]:
        plays = self.listener.plays
        if self.srv.visible_until_ms is not None:
            plays = plays[: bisect.bisect_right(plays, (self.srv.visible_until_ms, "\uffff"))]
        if self.srv.recent_limit is not None:
            plays = plays[-self.srv.recent_limit :]
        return plays

    def recently_played(self) -> dict[str, Any]:
        q = self.req.args
        limit = self._limit(20, 50)
        after, before = q.get("after"), q.get("before")
        if after and before:
            raise ApiError(400, "Only one of after or before may be given")
        try:
            after_ms = int(after) if after else None
            before_ms = int(before) if before else None
        except ValueError:
            raise ApiError(400, "Invalid cursor") from None
        plays = self._visible_plays()
        more = False
        if after_ms is not None:
            newer = [p for p in plays if p[0] > after_ms]
            chunk, more = newer[:limit], len(newer) > limit
        else:
            older = [p for p in plays if before_ms is None or p[0] < before_ms]
            chunk, more = older[-limit:], len(older) > limit
        chunk = sorted(chunk, reverse=True)
        items = []
        for ms, tid in chunk:
            track = self.track(tid)
            if track is None:
                continue
            items.append({"track": track, "played_at": iso_ms(ms), "context": None})
        cursors = {"after": str(chunk[0][0]), "before": str(chunk[-1][0])} if chunk else None
        nxt = None
        if more and chunk:
            nxt = (
                self._href("/me/player/recently-played", after=chunk[0][0], limit=limit)
                if after_ms is not None
                else self._href("/me/player/recently-played", before=chunk[-1][0], limit=limit)
            )
        return {
            "href": self._href("/me/player/recently-played", limit=limit, after=after, before=before),
            "items": items,
            "limit": limit,
            "next": nxt,
            "cursors": cursors,
            "total": len(plays),
        }

    def top(self, kind: str) -> dict[str, Any]:
        time_range = self.req.args.get("time_range") or "medium_term"
        if time_range not in TIME_RANGES:
            raise ApiError(400, "Invalid time range")
        limit, offset = self._limit(20, 50), self._offset()
        days = TIME_RANGES[time_range]
        end_ms = int(self.world.end.timestamp() * 1000)
        start_ms = end_ms - days * 86_400_000 if days else None
        counts: Counter[str] = Counter()
        for ms, tid in self.listener.plays:
            if start_ms is not None and ms < start_ms:
                continue
            if kind == "tracks":
                counts[tid] += 1
            else:
                for a in split_ids((self.world.tracks.get(tid) or {}).get("artist_ids")):
                    counts[a] += 1
        ranked = [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        fn = self.track if kind == "tracks" else self.artist
        known = self.world.tracks if kind == "tracks" else self.world.artists
        ranked = [i for i in ranked if i in known][:50]
        items = [fn(i) for i in ranked[offset : offset + limit]]
        return self._page(f"/me/top/{kind}", items, len(ranked), limit, offset, time_range=time_range)

    def saved(self) -> dict[str, Any]:
        limit, offset = self._limit(20, 50), self._offset()
        saved = [s for s in self.listener.saved if s[1] in self.world.tracks]
        items = [{"added_at": added, "track": self.track(tid)} for added, tid in saved[offset : offset + limit]]
        return self._page("/me/tracks", items, len(saved), limit, offset)

    def _owner(self) -> dict[str, Any]:
        return {
            **self._ext("user", self.handle),
            "display_name": self.handle,
            "href": self._href(f"/users/{self.handle}"),
        }

    def _find_playlist(self, playlist_id: str) -> dict[str, Any]:
        for pl in self.listener.playlists:
            if pl["id"] == playlist_id:
                return pl
        for handle in self.world.handles:  # someone else's playlist: readable, not writable
            for pl in self.world.listener(handle).playlists:
                if pl["id"] == playlist_id:
                    return pl
        raise ApiError(404, "Resource not found")

    def _owned_playlist(self, playlist_id: str) -> dict[str, Any]:
        pl = self._find_playlist(playlist_id)
        if pl not in self.listener.playlists:
            raise ApiError(403, "You cannot modify a playlist you do not own")
        return pl

    def _playlist_simple(self, pl: dict[str, Any]) -> dict[str, Any]:
        ref = {"href": self._href(f"/playlists/{pl['id']}/items"), "total": len(pl["items"])}
        return {
            **self._ext("playlist", pl["id"]),
            "href": self._href(f"/playlists/{pl['id']}"),
            "collaborative": False,
            "description": pl["description"],
            "images": [],
            "name": pl["name"],
            "owner": self._owner(),
            "public": pl["public"],
            "snapshot_id": f"snap-{pl['snapshot']}",
            "items": ref,
            "tracks": ref,
        }

    def playlists(self) -> dict[str, Any]:
        limit, offset = self._limit(20, 50), self._offset()
        pls = self.listener.playlists
        items = [self._playlist_simple(p) for p in pls[offset : offset + limit]]
        return self._page("/me/playlists", items, len(pls), limit, offset)

    def _playlist_track(self, added: str, tid: str) -> dict[str, Any]:
        track = self.track(tid)
        return {
            "added_at": added,
            "added_by": {**self._ext("user", self.handle), "href": self._href(f"/users/{self.handle}")},
            "is_local": False,
            "item": track,
            "track": track,
        }

    def playlist_items(self, playlist_id: str) -> dict[str, Any]:
        pl = self._find_playlist(playlist_id)
        limit, offset = self._limit(100, 100), self._offset()
        entries = [e for e in pl["items"] if e[1] in self.world.tracks]
        items = [self._playlist_track(a, t) for a, t in entries[offset : offset + limit]]
        return self._page(f"/playlists/{playlist_id}/items", items, len(entries), limit, offset)

    def playlist_full(self, playlist_id: str) -> dict[str, Any]:
        pl = self._find_playlist(playlist_id)
        obj = self._playlist_simple(pl)
        entries = [e for e in pl["items"] if e[1] in self.world.tracks]
        page = self._page(
            f"/playlists/{playlist_id}/items",
            [self._playlist_track(a, t) for a, t in entries[:100]],
            len(entries),
            100,
            0,
        )
        obj.update({"followers": {"href": None, "total": 0}, "items": page, "tracks": page})
        return obj

    def _body(self) -> Any:
        return self.req.get_json(force=True, silent=True)

    def create_playlist(self) -> dict[str, Any]:
        body = self._body() or {}
        name = body.get("name") if isinstance(body, dict) else None
        if not name:
            raise ApiError(400, "Missing required field: name")
        with self.srv._lock:
            pl = {
                "id": base62_id(f"created|{self.handle}|{name}|{time.time_ns()}"),
                "name": name,
                "description": body.get("description") or "",
                "items": [],
                "snapshot": 1,
                "public": bool(body.get("public", True)),
            }
            self.listener.playlists.append(pl)
        obj = self._playlist_simple(pl)
        obj.update(
            {
                "followers": {"href": None, "total": 0},
                "items": self._page(f"/playlists/{pl['id']}/items", [], 0, 100, 0),
            }
        )
        obj["tracks"] = obj["items"]
        return obj

    def _uris(self) -> list[str]:
        body = self._body()
        uris: list[str] = []
        if isinstance(body, list):
            uris = body
        elif isinstance(body, dict) and body.get("uris"):
            uris = body["uris"]
        elif self.req.args.get("uris"):
            uris = self.req.args["uris"].split(",")
        if len(uris) > 100:
            raise ApiError(400, "Too many items: at most 100 per request")
        ids = []
        for uri in uris:
            tid = uri_id(uri, "track")
            if tid is None:
                raise ApiError(400, f"Invalid track uri: {uri}")
            ids.append(tid)
        return ids

    def add_items(self, playlist_id: str) -> dict[str, Any]:
        pl = self._owned_playlist(playlist_id)
        ids = self._uris()
        body = self._body()
        pos = self.req.args.get("position") or (body.get("position") if isinstance(body, dict) else None)
        now = iso_s(datetime.now(UTC))
        with self.srv._lock:
            new = [(now, t) for t in ids]
            if pos is None:
                pl["items"].extend(new)
            else:
                pl["items"][int(pos) : int(pos)] = new
            pl["snapshot"] += 1
        return {"snapshot_id": f"snap-{pl['snapshot']}"}

    def replace_items(self, playlist_id: str) -> dict[str, Any]:
        pl = self._owned_playlist(playlist_id)
        ids = self._uris()
        now = iso_s(datetime.now(UTC))
        with self.srv._lock:
            pl["items"] = [(now, t) for t in ids]
            pl["snapshot"] += 1
        return {"snapshot_id": f"snap-{pl['snapshot']}"}


def serve(
    world_dir: str | Path,
    *,
    port: int = 8765,
    host: str = "127.0.0.1",
    dev_mode: bool = False,
    faults: str = "",
    recent_limit: int | None = None,
) -> None:
    """Run the fake server in the foreground (what `tunelake fake-spotify` does)."""
    srv = FakeSpotify(world_dir, dev_mode=dev_mode, host=host, port=port, recent_limit=recent_limit)
    if faults:
        srv.apply_faults(parse_fault_spec(faults))
    srv.serve_forever()


__all__ = [
    "DEV_MODE_MAX_USERS",
    "OPEN",
    "TIME_RANGES",
    "ApiError",
    "FakeSpotify",
    "FaultRule",
    "Faults",
    "Listener",
    "World",
    "base62_id",
    "parse_fault_spec",
    "serve",
]
