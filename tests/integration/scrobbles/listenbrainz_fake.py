"""A small local fake of ListenBrainz's submit-listens API, for `tunelake export listenbrainz --submit` tests.

`POST /1/submit-listens` and `GET /1/validate-token` as ListenBrainz answers them (a `Token <token>` header,
listen_type import/single/playing_now, at most 1000 listens, listened_at an integer, artist and track names
strings), with ListenBrainz's rate limit: a fixed window of `window_s` seconds allowing `limit` requests, announced
on every response in X-RateLimit-Limit / X-RateLimit-Remaining / X-RateLimit-Reset-In / X-RateLimit-Reset, and
429 for a request over the limit. It counts the 429s it had to send, which a client honouring the headers never
causes. Binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _Quiet(WSGIRequestHandler):
    def log(self, *args: Any) -> None:  # no request log on the test output
        pass


class FakeListenBrainz:
    def __init__(self, token: str = "secret-token", *, limit: int = 30, window_s: float = 10.0,
                 user: str = "fake-user") -> None:
        self.token, self.limit, self.window_s, self.user = token, limit, window_s, user
        self.listens: list[dict[str, Any]] = []
        self.requests: list[float] = []  # arrival times of accepted submit requests
        self.rejected_429 = 0
        self._window_start: float | None = None
        self._used = 0
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> FakeListenBrainz:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the rate limit ------------------------------------------------------------------------------------
    def _take(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            if self._window_start is None or now - self._window_start >= self.window_s:
                self._window_start, self._used = now, 0
            allowed = self._used < self.limit
            if allowed:
                self._used += 1
            reset_in = self.window_s - (now - self._window_start)
            headers = {"X-RateLimit-Limit": str(self.limit),
                       "X-RateLimit-Remaining": str(max(self.limit - self._used, 0)),
                       "X-RateLimit-Reset-In": str(math.ceil(reset_in)),
                       "X-RateLimit-Reset": str(int(time.time() + reset_in))}
            if not allowed:
                self.rejected_429 += 1
            return allowed, headers

    @staticmethod
    def _json(body: Any, status: int, headers: dict[str, str]) -> Response:
        return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        allowed, headers = self._take()
        if not allowed:
            resp = self._json({"code": 429, "error": "Too many requests"}, 429, headers)
        elif req.path == "/1/validate-token" and req.method == "GET":
            ok = req.headers.get("Authorization") == f"Token {self.token}"
            resp = self._json({"code": 200, "valid": ok, "user_name": self.user if ok else None,
                               "message": "Token valid." if ok else "Token invalid."}, 200, headers)
        elif req.path == "/1/submit-listens" and req.method == "POST":
            resp = self._submit(req, headers)
        else:
            resp = self._json({"code": 404, "error": "Not found"}, 404, headers)
        return resp(environ, start_response)

    def _submit(self, req: Request, headers: dict[str, str]) -> Response:
        if req.headers.get("Authorization") != f"Token {self.token}":
            return self._json({"code": 401, "error": "Invalid authorization token."}, 401, headers)
        try:
            body = json.loads(req.get_data())
        except ValueError:
            return self._json({"code": 400, "error": "Cannot parse JSON document."}, 400, headers)
        kind, payload = body.get("listen_type"), body.get("payload")
        if kind not in ("import", "single", "playing_now") or not isinstance(payload, list) or not payload:
            return self._json({"code": 400, "error": "Invalid listen_type or payload."}, 400, headers)
        if len(payload) > 1000:
            return self._json({"code": 400, "error": "Too many listens."}, 400, headers)
        for listen in payload:
            meta = listen.get("track_metadata") if isinstance(listen, dict) else None
            if (type(listen.get("listened_at")) is not int or not isinstance(meta, dict)
                    or not isinstance(meta.get("artist_name"), str) or not isinstance(meta.get("track_name"), str)):
                return self._json({"code": 400, "error": "Invalid listen.", "payload": listen}, 400, headers)
        with self._lock:
            self.listens.extend(payload)
            self.requests.append(time.monotonic())
        return self._json({"status": "ok"}, 200, headers)
