"""The fake server's app-wide rate limit: N requests in a rolling window, then 429 with the wait that frees a slot."""

from __future__ import annotations

import os

import pytest

if os.environ.get("CI") == "true":  # under CI a missing dependency fails, never skips
    import werkzeug  # noqa: F401
else:
    pytest.importorskip("werkzeug", reason="werkzeug is not installed (pip install 'tunelake[api]')")

from tunelake.synthetic.server.faults import Faults, apply_faults, parse_fault_spec


def test_rolling_window_and_retry_after() -> None:
    f = Faults()
    assert f.over_rate(now=0.0) is None  # no limit set: never over
    f.set_rate(3, 30)
    assert [f.over_rate(now=t) for t in (100.0, 101.0, 110.5)] == [None, None, None]
    assert f.over_rate(now=111.0) == 19  # the slot of the request at 100.0 frees at 130.0
    assert f.over_rate(now=129.2) == 1  # rounded up, never 0
    assert f.over_rate(now=130.0) is None  # 100.0 has left the window; refused requests took no slot
    assert f.over_rate(now=130.5) == 1  # 101.0 frees at 131.0
    f.clear()
    assert f.rate is None and f.over_rate(now=130.6) is None


def test_rate_from_spec_and_bad_values() -> None:
    assert parse_fault_spec("rate:180/30,rate:5") == [
        {"kind": "rate", "limit": 180, "window": 30.0}, {"kind": "rate", "limit": 5, "window": 30.0}]
    f = Faults()
    apply_faults(f, parse_fault_spec("rate:180/30"), expire_tokens=lambda: None)
    assert f.rate == (180, 30.0)
    with pytest.raises(ValueError, match="limit >= 1"):
        f.set_rate(0, 30)
    with pytest.raises(ValueError):
        parse_fault_spec("rate:many")
