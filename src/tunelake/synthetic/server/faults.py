"""Fault injection: the failures a Spotify client must survive (429 with Retry-After, 5xx bursts, slow answers,
tokens that die early), switched on from Python (`srv.faults`), the CLI (`--faults SPEC`) or HTTP (`/_fault`).

Faults sit in front of the Web API, before authorisation, like a rate limiter or a failing gateway in front of
the real service. The accounts service is faulted only by a rule whose `path` names it (`/api/token`: a token
refresh that answers 5xx, 429 or slowly, as in the outage that cost ListenBrainz its users' tokens), so a test can
always log in otherwise. Two token behaviours of the real service can be switched on too: a refresh that returns
no new refresh token (`no_rotate`), and refresh tokens revoked, for everyone or one listener (`revoke_tokens`,
answered `invalid_grant`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from tunelake.synthetic.server.responses import ApiError, json_response

KINDS = ("429", "500", "502", "503", "slow")
_SERVER_ERRORS = {"500": "Server error", "502": "Bad gateway", "503": "Service unavailable"}


@dataclass
class FaultRule:
    kind: str  # 429 | 500 | 502 | 503 | slow
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
    lock: threading.Lock = field(default_factory=threading.Lock)

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
    """`429x3:2,503x2,slowx5:1.5,ttl:30,no_rotate,revoke_tokens` → fault dicts (kind, count, retry_after/delay/…)."""
    out: list[dict[str, Any]] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        head, _, arg = part.partition(":")
        kind, _, count = head.partition("x")
        kind = kind.strip()
        if kind == "ttl":
            out.append({"kind": "ttl", "seconds": float(arg or 0)})
            continue
        if kind in ("no_rotate", "revoke_tokens", "expire_tokens"):
            out.append({"kind": kind, **({"user": arg} if arg and kind == "revoke_tokens" else {})})
            continue
        item: dict[str, Any] = {"kind": kind, "count": int(count or 1)}
        if kind == "429":
            item["retry_after"] = int(float(arg or 1))
        elif kind == "slow":
            item["delay"] = float(arg or 1)
        elif kind not in ("500", "502", "503"):
            raise ValueError(
                f"unknown fault {part!r}: use 429xN:SECONDS, 500xN, 502xN, 503xN, slowxN:SECONDS, ttl:S, no_rotate, "
                "revoke_tokens[:USER], expire_tokens"
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
    rule = faults.take(path, accounts=accounts)
    if rule is None:
        return
    if rule.kind == "slow":
        time.sleep(rule.delay)
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
         "rotate_refresh": faults.rotate_refresh, "requests": requests_seen}
    )
