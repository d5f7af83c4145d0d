"""The error and JSON answers shared by the accounts service, the fault layer and the Web API routes."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response


class ApiError(Exception):
    """Raised anywhere below the WSGI entry point, answered there in Spotify's error shape (`{"error": …}`)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj), status=status, mimetype="application/json")


def error_response(exc: ApiError) -> Response:
    response = json_response({"error": {"status": exc.status, "message": exc.message}}, exc.status)
    for k, v in exc.headers.items():
        response.headers[k] = v
    return response
