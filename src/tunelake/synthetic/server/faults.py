"""Fault injection: the failures a Spotify client must survive (429 with Retry-After, 5xx bursts, slow answers,
tokens that die early), switched on from Python (`srv.faults`), the CLI (`--faults SPEC`) or HTTP (`/_fault`).

Faults sit in front of the Web API, before authorisation, like a rate limiter or a failing gateway in front of
the real service. The accounts service is faulted only by a rule whose `path` names it (`/api/token`: a token
refresh that answers 5xx, 429 or slowly, as in the outage that cost ListenBrainz its users' tokens), so a test can
always log in otherwise. Two token behaviours of the real service can be switched on too: a refresh that returns
no new refresh token (`no_rotate`), and refresh tokens revoked, for everyone or one listener (`revoke_tokens`,
answered `invalid_grant`). And a rate limit like Spotify's (`rate`): at most N Web API requests in a rolling window
for the whole app, every listener's requests counted together, then 429 with the Retry-After that frees a slot.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from tunelake.synthetic.server.responses import ApiError, json_response

KINDS = ("429", "500", "502", "503", "slow", "drop")
_SERVER_ERRORS = {"500": "Server error", "502": "Bad gateway", "503": "Service unavailable"}


class DropConnection(Exception):
    """Close this request's connection without an answer: a network failure, as the client sees it."""


@dataclass
class FaultRule:
    kind: str  # 429 | 500 | 502 | 503 | slow | drop (the connection is closed with no answer)
    count: int
    retry_after: int = 1
    delay: float = 0.0
    path: str = ""  # only requests whose path contains this


@dataclass
class Faults:
    """Runtime fault plan. Rules are consumed in order, one per matching API request."""

    rules: list[FaultRule] = field(default_factory=list)
    token_ttl: float | None = None  # server-side lifetime of newly issued access tokens (seconds)
    rotate_refresh: bool = True  # False: a refresh answer has no new refresh token (the old one stays valid)
    rate: tuple[int, float] | None = None  # (requests, window seconds) for the whole app, on the wall clock
    lock: threading.Lock = field(default_factory=threading.Lock)
    _recent: deque[float] = field(default_factory=deque)  # when the requests of the current window came

    def set_rate(self, limit: int, window: float) -> None:
        if int(limit) < 1 or float(window) <= 0:
            raise ValueError("rate needs limit >= 1 and window > 0 seconds")
        with self.lock:
            self.rate = (int(limit), float(window))
            self._recent.clear()

    def over_rate(self, now: float | None = None) -> int | None:
        """Count this request against the app's rate limit; the Retry-After (whole seconds) when it is over."""
        with self.lock:
            if self.rate is None:
                return None
            limit, window = self.rate
            now = time.monotonic() if now is None else now
            while self._recent and self._recent[0] <= now - window:
                self._recent.popleft()
            if len(self._recent) >= limit:
                return max(1, math.ceil(self._recent[0] + window - now))
            self._recent.append(now)
            return None

    def add(self, kind: str, count: int = 1, *, retry_after: int = 1, delay: float = 0.0, path: str = "") -> None:
        kind = str(kind)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        with self.lock:
            self.rules.append(FaultRule(kind, int(count), int(retry_after), float(delay), path))

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
            self.token_ttl = None
            self.rotate_refresh = True
            self.rate = None
            self._recent.clear()

    def take(self, path: str, *, accounts: bool = False) -> FaultRule | None:
        """The next rule for this request; one for the accounts service must name it in its `path`."""
        with self.lock:
            for rule in self.rules:
                if rule.count > 0 and rule.path in path and (rule.path or not accounts):
                    rule.count -= 1
                    return rule
            self.rules = [r for r in self.rules if r.count > 0]
        return None


def parse_fault_spec(spec: str) -> list[dict[str, Any]]:
    """`429x3:2,503x2,slowx5:1.5,ttl:30,rate:100/30,no_rotate,revoke_tokens` → fault dicts (kind, count, …)."""
    out: list[dict[str, Any]] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        head, _, arg = part.partition(":")
        kind, _, count = head.partition("x")
        kind = kind.strip()
        if kind == "ttl":
            out.append({"kind": "ttl", "seconds": float(arg or 0)})
            continue
        if kind == "rate":
            limit, _, window = arg.partition("/")
            out.append({"kind": "rate", "limit": int(limit), "window": float(window or 30)})
            continue
        if kind in ("no_rotate", "revoke_tokens", "expire_tokens"):
            out.append({"kind": kind, **({"user": arg} if arg and kind == "revoke_tokens" else {})})
            continue
        item: dict[str, Any] = {"kind": kind, "count": int(count or 1)}
        if kind == "429":
            item["retry_after"] = int(float(arg or 1))
        elif kind == "slow":
            item["delay"] = float(arg or 1)
        elif kind not in ("500", "502", "503", "drop"):
            raise ValueError(
                f"unknown fault {part!r}: use 429xN:SECONDS, 500xN, 502xN, 503xN, slowxN:SECONDS, dropxN, ttl:S, "
                "rate:N/SECONDS, no_rotate, revoke_tokens[:USER], expire_tokens"
            )
        out.append(item)
    return out


def apply_faults(
    faults: Faults,
    items: list[dict[str, Any]],
    expire_tokens: Callable[[], None],
    revoke_tokens: Callable[[str | None], int] | None = None,
) -> None:
    """One entry point for fault dicts from `parse_fault_spec`, `/_fault` bodies and Python callers alike.

    `expire_tokens` and `revoke_tokens` are passed in because tokens belong to the accounts service, not to the
    fault plan.
    """
    for item in items:
        item = dict(item)
        kind = str(item.pop("kind"))
        if kind == "ttl":
            faults.token_ttl = float(item.get("seconds", 0))
        elif kind == "expire_tokens":
            expire_tokens()
        elif kind == "rate":
            faults.set_rate(int(item["limit"]), float(item.get("window", 30)))
        elif kind == "no_rotate":
            faults.rotate_refresh = False
        elif kind == "revoke_tokens":
            if revoke_tokens is None:
                raise ValueError("revoke_tokens needs the accounts service")
            revoke_tokens(item.get("user"))
        else:
            faults.add(kind, **item)


def inject(faults: Faults, path: str, *, accounts: bool = False) -> None:
    """Sleep or fail this request if the plan says so; every `/v1/` path counts, routed or not, and an accounts
    path only for a rule that names it."""
    if not accounts and (retry_after := faults.over_rate()) is not None:
        raise ApiError(429, "API rate limit exceeded", {"Retry-After": str(retry_after)})
    rule = faults.take(path, accounts=accounts)
    if rule is None:
        return
    if rule.kind == "slow":
        time.sleep(rule.delay)
    elif rule.kind == "drop":
        raise DropConnection
    elif rule.kind == "429":
        raise ApiError(429, "API rate limit exceeded", {"Retry-After": str(rule.retry_after)})
    else:
        raise ApiError(int(rule.kind), _SERVER_ERRORS[rule.kind])


def admin(
    req: Request,
    faults: Faults,
    *,
    expire_tokens: Callable[[], None],
    requests_seen: int,
    revoke_tokens: Callable[[str | None], int] | None = None,
) -> Response:
    """`/_fault`: change the plan while the server runs (a separate process, in the demo and CLI tests)."""
    if req.method == "DELETE":
        faults.clear()
        return json_response({"ok": True})
    if req.method == "POST":
        body = req.get_json(force=True, silent=True) or {}
        items = body if isinstance(body, list) else [body]
        if req.path.rstrip("/").endswith("expire_tokens"):
            items = [{"kind": "expire_tokens"}]
        try:
            apply_faults(faults, items, expire_tokens, revoke_tokens)
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(400, f"bad fault: {exc}") from None
        return json_response({"ok": True})
    return json_response(
        {"rules": [r.__dict__ for r in faults.rules], "token_ttl": faults.token_ttl,
         "rotate_refresh": faults.rotate_refresh, "rate": list(faults.rate) if faults.rate else None,
         "requests": requests_seen}
    )
