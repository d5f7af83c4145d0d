"""Which `Host` headers the dashboard answers.

A page on any web site can point its own domain at 127.0.0.1 (DNS rebinding) and then read the dashboard as if it
were same-origin; the one thing it cannot forge is the `Host` header, which stays the attacker's domain. So the
server answers only the names a person actually types for it: loopback, the address it was bound to, and the
names listed in the `dashboard_allowed_hosts` setting (a reverse proxy's name). Everything else gets 400 before
any route, asset or callback runs.

Flask's own `TRUSTED_HOSTS` is not used: with Werkzeug 3.1 it can never trust an IPv6 literal such as `[::1]`
(the trusted entry is cut at its first colon), it only raises once routing runs, after `before_request` hooks, and
Flask < 3.1 (which Dash still accepts) ignores it silently. Splitting `host:port` is left to the standard library.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

from tunelake.errors import ConfigError
from tunelake.workspace import Workspace

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SETTING = "dashboard_allowed_hosts"

log = logging.getLogger(__name__)


def host_name(value: str) -> str | None:
    """The name part of a `host[:port]` value, lower-cased, IPv6 without brackets; None when it is not one.

    Anything a URL authority could hide behind (user info, a path, a bad port) makes the value invalid rather
    than being cut away, so what is compared is exactly the name the browser connected to."""
    value = value.strip()
    if not value or any(c in value for c in "/?#@\\ \t"):
        return None
    try:
        if value.count(":") > 1 and not value.startswith("["):
            ipaddress.IPv6Address(value)  # a bare IPv6 address (in the setting or as the bind address)
            value = f"[{value}]"
        parts = urlsplit(f"//{value}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        return None
    return parts.hostname or None


def allowed_hosts(ws: Workspace, bound: str | None = None) -> frozenset[str]:
    """Loopback, the bound address (default: the dashboard_host setting) and the setting's names, each as
    `host_name` gives it, so a header matches whatever port it carries."""
    names = {host_name(raw) for raw in LOOPBACK_NAMES}
    bound = ws.settings.dashboard_host if bound is None else bound
    if bound and host_name(bound):
        names.add(host_name(bound))
    for raw in _split(getattr(ws.settings, SETTING)):
        name = host_name(raw)
        if name is None:
            raise ConfigError(f"setting '{SETTING}': {raw!r} is not a host name or address",
                              hint="list names as the browser's address bar shows them, e.g. dash.example.org")
        names.add(name)
    return frozenset(n for n in names if n)


def _split(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def install_host_check(server: Any, allowed: frozenset[str]) -> None:
    """Reject any other `Host` with a short plain-text 400, ahead of every other hook (so the read-only 405
    and Dash's own set-up never run for a foreign host)."""
    from flask import Response, request

    def check_host() -> Response | None:
        header = request.headers.get("Host", "")
        if host_name(header) in allowed:
            return None
        shown = header if len(header) <= 80 else header[:77] + "..."
        log.warning("dashboard: refused a request for Host %r (allowed: %s; setting %s adds names)",
                    shown, ", ".join(sorted(allowed)), SETTING)
        resp = Response(f"400 Bad Request: the dashboard does not answer for Host {shown!r}; add it to the "
                        f"{SETTING} setting if it is yours.\n", status=400, mimetype="text/plain")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    server.before_request_funcs.setdefault(None, []).insert(0, check_host)


__all__ = ["LOOPBACK_NAMES", "allowed_hosts", "host_name", "install_host_check"]
