"""`FakeSpotify`: the accounts service, the fault layer and the Web API on one loopback port, in a thread or in the
foreground (`tunelake fake-spotify`).

It holds what lives as long as the server: the world and its timeline (static, or live with a simulated clock),
the settings tests change while it runs (dev mode, auto-approve, `visible_until_ms`, `recent_limit`, token
lifetime), the fault plan, the accounts' tokens and a log of requests that tests count.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tunelake.synthetic.server import faults as _faults
from tunelake.synthetic.server import live as _live
from tunelake.synthetic.server import routes
from tunelake.synthetic.server.accounts import Accounts
from tunelake.synthetic.server.faults import Faults, parse_fault_spec
from tunelake.synthetic.server.live import LiveTimeline, Timeline
from tunelake.synthetic.server.objects import View
from tunelake.synthetic.server.responses import ApiError, error_response, json_response
from tunelake.synthetic.server.world_view import World


class _Tail(BaseConverter):
    """The rest of the path after a mount point, empty or with repeated slashes (`[^/].*?` of `path` is not)."""

    regex = ".*"
    part_isolating = False


SERVICE = Map(
    [
        Rule("/authorize", endpoint="authorize"),
        Rule("/api/token", endpoint="token"),
        Rule("/_fault<tail:rest>", endpoint="admin"),
        Rule("/_live/<tail:rest>", endpoint="live"),
        Rule("/v1/<tail:rest>", endpoint="api"),
    ],
    converters={"tail": _Tail},
    merge_slashes=False,
)


def _service(req: Request) -> tuple[str, dict[str, str]]:
    """Which service a request is for, and the rest of its path.

    Spotify runs accounts and the Web API on two hosts; here they share one port with `/_fault`, and this split
    is what keeps faults and bearer tokens to `/v1/`.
    """
    try:
        return SERVICE.bind("fake-spotify").match(req.path, req.method)
    except HTTPException:
        raise ApiError(404, routes.NOT_FOUND) from None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # no access log: URLs may carry auth codes
        pass


REAL_RECENT_LIMIT = 50  # the real API never shows more than the last 50 plays
REQUEST_LOG = 200_000  # requests kept for `count` (a live server runs for hours)


class FakeSpotify:
    """The fake Web API (`/v1/…`) and accounts service (`/authorize`, `/api/token`) on one loopback port.

    `live=SPEED` turns on live mode: simulated time starts at the world's end and runs SPEED× faster than the wall
    clock (0 stops it; `live_clock` moves it), and the listeners keep listening. `recent_limit` is how many of the
    last plays recently-played exposes: `None` means the mode's default, 50 (the real API) in live mode and the
    whole history in static mode, where `after` pages forward through it; `0` asks for the whole history in either.
    """

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
        live: float | None = None,
    ) -> None:
        self.world = World(world_dir)
        self.timeline: Timeline = Timeline(self.world) if live is None else LiveTimeline(self.world, live)
        self.dev_mode = dev_mode
        self.host, self.port = host, port
        self.auto_approve = auto_approve
        if recent_limit is not None and recent_limit < 0:
            raise ValueError("recent_limit must be >= 0 (0: the whole history)")
        if recent_limit is None:
            recent_limit = REAL_RECENT_LIMIT if live is not None else 0
        self.recent_limit: int | None = recent_limit or None  # None: the whole history
        self.token_expires_in = token_expires_in
        self.faults = Faults()
        self.accounts = Accounts()
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=REQUEST_LOG)  # (method, path, status)
        self.requests_total = 0
        self._writes = threading.RLock()  # playlist changes
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
        self._start_clock()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-spotify", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server = make_server(self.host, self.port, self.wsgi, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.server_port
        self._start_clock()
        self._server.serve_forever()

    def _start_clock(self) -> None:
        """Simulated time starts when the server does, not when the (slow) catalogue was built."""
        if isinstance(self.timeline, LiveTimeline):
            self.timeline.clock.start()

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
    @property
    def live(self) -> bool:
        return self.timeline.live

    @property
    def visible_until_ms(self) -> int | None:
        """Plays after this are "in the future" (tests move it); in live mode the clock hides them too."""
        return self.timeline.visible_until_ms

    @visible_until_ms.setter
    def visible_until_ms(self, value: int | None) -> None:
        self.timeline.visible_until_ms = value

    def live_clock(self, *, now_ms: int | None = None, advance_s: float | None = None,
                   speed: float | None = None) -> int:
        """Live mode: set or advance simulated time and/or its speed (what `POST /_live/clock` does); the new now."""
        if not isinstance(self.timeline, LiveTimeline):
            raise RuntimeError("live mode is off: FakeSpotify(..., live=SPEED)")
        return self.timeline.clock.set(now_ms=now_ms, advance_s=advance_s, speed=speed)

    def now_ms(self) -> int:
        """Simulated now in live mode; the wall clock otherwise."""
        if isinstance(self.timeline, LiveTimeline):
            return self.timeline.clock.now_ms()
        return int(time.time() * 1000)

    def truth(self, handle: str, after_ms: int | None = None) -> list[tuple[int, str]]:
        """Every play of `handle` so far (after `after_ms`), oldest first: (played_at ms, track id), as
        `/_live/truth` lists them."""
        plays = self.timeline.plays(handle)
        return [p for p in plays if p[0] > after_ms] if after_ms is not None else list(plays)

    def live_export(self, handle: str) -> list[dict[str, Any]]:
        """Live mode: the listener's export of the live days so far (what `/_live/export` answers)."""
        if not isinstance(self.timeline, LiveTimeline):
            raise RuntimeError("live mode is off: FakeSpotify(..., live=SPEED)")
        return self.timeline.export_rows(handle)

    def expire_tokens(self) -> None:
        """Every access token issued so far answers 401 from now on (refresh tokens stay valid)."""
        self.accounts.expire_all()

    def revoke_tokens(self, handle: str | None = None) -> int:
        """The refresh tokens of `handle` (or everyone) answer `invalid_grant`: only a new login restores them."""
        return self.accounts.revoke(handle)

    def apply_faults(self, items: list[dict[str, Any]]) -> None:
        """Fault dicts as `parse_fault_spec` returns them; `ttl` and `expire_tokens` act on tokens."""
        _faults.apply_faults(self.faults, items, self.expire_tokens, self.revoke_tokens)

    def count(self, path_part: str, status: int | None = None, method: str = "GET") -> int:
        """How many requests so far hit a path containing `path_part` (with that status, if given)."""
        return sum(
            1 for m, p, s in list(self.requests) if m == method and path_part in p and (status is None or s == status)
        )

    # --- WSGI -------------------------------------------------------------------------------------------------
    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, values = _service(request)
            services = {"authorize": self._authorize, "token": self._token, "admin": self._admin, "api": self._api,
                        "live": self._live}
            response = services[endpoint](request, **values)
        except ApiError as exc:
            response = error_response(exc)
        except _faults.DropConnection:  # a network failure: close the socket, answer nothing
            self.requests.append((request.method, request.path, 0))
            self.requests_total += 1
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return []
        except Exception as exc:  # a bug in the fake: answer like the real service would, and say what broke
            response = json_response({"error": {"status": 500, "message": f"fake server error: {exc!r}"}}, 500)
        self.requests.append((request.method, request.path, response.status_code))
        self.requests_total += 1
        return response(environ, start_response)

    def _authorize(self, req: Request) -> Response:
        return self.accounts.authorize(
            req, handles=self.world.handles, dev_mode=self.dev_mode, auto_approve=self.auto_approve
        )

    def _token(self, req: Request) -> Response:
        _faults.inject(self.faults, req.path, accounts=True)  # only rules that name /api/token
        ttl = self.faults.token_ttl if self.faults.token_ttl is not None else self.token_expires_in
        return self.accounts.token(req, ttl=ttl, expires_in=self.token_expires_in, rotate=self.faults.rotate_refresh)

    def _admin(self, req: Request, rest: str) -> Response:
        return _faults.admin(req, self.faults, expire_tokens=self.expire_tokens, requests_seen=self.requests_total,
                             revoke_tokens=self.revoke_tokens)

    def _live(self, req: Request, rest: str) -> Response:
        return _live.admin(req, rest, self.timeline)

    def _api(self, req: Request, rest: str) -> Response:
        """Faults first, then the token, then the route: a rate limiter answers before anything else looks."""
        _faults.inject(self.faults, req.path)
        handle = self.accounts.listener_for(req)
        view = View(self.world, req.host_url.rstrip("/"), self.dev_mode)
        call = routes.Call(view, handle, req, self.timeline, self.recent_limit, self._writes)
        return json_response(*routes.dispatch(call, rest))


def serve(
    world_dir: str | Path,
    *,
    port: int = 8765,
    host: str = "127.0.0.1",
    dev_mode: bool = False,
    faults: str = "",
    recent_limit: int | None = None,
    live: float | None = None,
) -> None:
    """Run the fake server in the foreground (what `tunelake fake-spotify` does)."""
    srv = FakeSpotify(world_dir, dev_mode=dev_mode, host=host, port=port, recent_limit=recent_limit, live=live)
    if faults:
        srv.apply_faults(parse_fault_spec(faults))
    srv.serve_forever()
