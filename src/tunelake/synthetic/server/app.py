"""`FakeSpotify`: the accounts service, the fault layer and the Web API on one loopback port, in a thread or in the
foreground (`tunelake fake-spotify`).

It holds what lives as long as the server: the world, the settings tests change while it runs (dev mode,
auto-approve, `visible_until_ms`, `recent_limit`, token lifetime), the fault plan, the accounts' tokens and a log
of requests that tests count.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter, Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tunelake.synthetic.server import faults as _faults
from tunelake.synthetic.server import routes
from tunelake.synthetic.server.accounts import Accounts
from tunelake.synthetic.server.faults import Faults, parse_fault_spec
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
        self.accounts = Accounts()
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
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
        """Fault dicts as `parse_fault_spec` returns them; `ttl` and `expire_tokens` act on tokens."""
        _faults.apply_faults(self.faults, items, self.expire_tokens)

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
            services = {"authorize": self._authorize, "token": self._token, "admin": self._admin, "api": self._api}
            response = services[endpoint](request, **values)
        except ApiError as exc:
            response = error_response(exc)
        except Exception as exc:  # a bug in the fake: answer like the real service would, and say what broke
            response = json_response({"error": {"status": 500, "message": f"fake server error: {exc!r}"}}, 500)
        self.requests.append((request.method, request.path, response.status_code))
        return response(environ, start_response)

    def _authorize(self, req: Request) -> Response:
        return self.accounts.authorize(
            req, handles=self.world.handles, dev_mode=self.dev_mode, auto_approve=self.auto_approve
        )

    def _token(self, req: Request) -> Response:
        ttl = self.faults.token_ttl if self.faults.token_ttl is not None else self.token_expires_in
        return self.accounts.token(req, ttl=ttl, expires_in=self.token_expires_in)

    def _admin(self, req: Request, rest: str) -> Response:
        return _faults.admin(req, self.faults, expire_tokens=self.expire_tokens, requests_seen=len(self.requests))

    def _api(self, req: Request, rest: str) -> Response:
        """Faults first, then the token, then the route: a rate limiter answers before anything else looks."""
        _faults.inject(self.faults, req.path)
        handle = self.accounts.listener_for(req)
        view = View(self.world, req.host_url.rstrip("/"), self.dev_mode)
        call = routes.Call(view, handle, req, self.visible_until_ms, self.recent_limit, self._writes)
        return json_response(*routes.dispatch(call, rest))


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
