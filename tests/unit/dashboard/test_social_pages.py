"""The Year-in-review and Compare pages through the real app's callback endpoint: the figures they show against
direct queries on fact_play, consent enforced on every request, crafted values refused with a 400."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from .test_filters import assert_refused

WRAPPED = "filters.data,wrapped-year.value"
PAIR = "compare-a.value,compare-b.value"


def _walk(node: Any) -> Any:
    """Every component in a Dash JSON response, depth first."""
    if isinstance(node, dict):
        yield node
        for v in node.get("props", {}).values() if "props" in node else node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _by_id(tree: Any, cid: str) -> dict[str, Any]:
    return next(n for n in _walk(tree) if isinstance(n, dict) and n.get("props", {}).get("id") == cid)


def _text(node: Any) -> str:
    if isinstance(node, str | int | float):
        return str(node)
    if isinstance(node, list):
        return "".join(_text(n) for n in node)
    if isinstance(node, dict):
        return _text(node.get("props", {}).get("children", ""))
    return ""


def _users(sql: Any) -> list[tuple[int, str]]:
    return sql("SELECT user_key, handle FROM dim_user ORDER BY handle")


def test_wrapped_page_shows_the_listeners_year(callbacks: Any, sql: Any, requires: Any) -> None:
    requires("matplotlib", "the card is drawn with Matplotlib (extra 'report')")
    key, handle = _users(sql)[1]
    (year,) = sql("SELECT max(year(date)) FROM agg_user_day WHERE user_key = ?", [key])[0]
    (ms,) = sql(f"SELECT sum(ms_played) FROM fact_play WHERE user_key = ? AND date_key // 10000 = {year}",
                [key])[0]
    resp = callbacks.post(WRAPPED, [{"user": str(key)}, None])
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    out = resp.get_json()["response"]
    assert out["wrapped-year"]["value"] == year
    assert {"label": str(year), "value": year} in out["wrapped-year"]["options"]
    tree = out["wrapped-card"]["children"]
    assert _text(_by_id(tree, "wrapped-title")) == f"{handle} · {year}"
    facts = _text(_by_id(tree, "wrapped-facts"))
    assert facts.startswith(f"Minutes{round(ms / 60000):,}")
    assert "Never in Wrapped · Skips" in facts and "Never in Wrapped · Podcasts" in facts
    img = _by_id(tree, "wrapped-image")["props"]["src"]
    svg = base64.b64decode(img.split(",", 1)[1]).decode()
    assert "<svg" in svg and f"{handle} · {year} in review" in svg
    png = _by_id(tree, "wrapped-png")["props"]
    assert png["download"] == f"wrapped-{handle}-{year}.png"
    assert base64.b64decode(png["href"].split(",", 1)[1])[:4] == b"\x89PNG"
    stale = callbacks.post(WRAPPED, [{"user": str(key)}, 1999]).get_json()["response"]  # not one of its years
    assert stale["wrapped-year"]["value"] == year


@pytest.mark.parametrize("year", ["2026", 1.5, True, 99999, [2026], {"y": 1}])
def test_wrapped_page_refuses_crafted_years(callbacks: Any, caplog: pytest.LogCaptureFixture, year: Any) -> None:
    caplog.set_level(logging.INFO)
    assert_refused(callbacks.post(WRAPPED, [{}, year]), "year", caplog)


def test_compare_page_needs_both_agreements(callbacks: Any, dash_ws: Any, sql: Any) -> None:
    from tunelake.analytics.compare import compare
    from tunelake.analytics.consent import set_consent
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    ws = open_workspace(dash_ws)
    (ka, ha), (kb, hb) = _users(sql)[-2:]
    resp = callbacks.post(PAIR, [str(ka), str(kb)])
    assert resp.status_code == 200
    refused = _by_id(resp.get_json()["response"]["compare-result"]["children"], "compare-refused")
    assert _text(refused) == f"Not compared: {ha} and {hb} have not agreed to be compared."
    opts = callbacks.post("filters.data", [{}], "..compare-a.options").get_json()["response"]
    assert str(ka) not in [o["value"] for o in opts["compare-a"]["options"]]

    set_consent(ws, ha)
    set_consent(ws, hb)
    try:
        opts = callbacks.post("filters.data", [{}], "..compare-a.options").get_json()["response"]
        assert {str(ka), str(kb)} <= {o["value"] for o in opts["compare-b"]["options"]}
        tree = callbacks.post(PAIR, [str(ka), str(kb)]).get_json()["response"]["compare-result"]["children"]
        con = open_warehouse(ws)
        try:
            direct = compare(con, ka, kb)
        finally:
            con.close()
        assert _text(_by_id(tree, "compare-score")) == str(direct["score"])
        assert _text(_by_id(tree, "compare-explanation")) == direct["explanation"]
        set_consent(ws, hb, granted=False)  # revoking holds at once, whatever the dashboard cached
        tree = callbacks.post(PAIR, [str(ka), str(kb)]).get_json()["response"]["compare-result"]["children"]
        assert _text(_by_id(tree, "compare-refused")) == f"Not compared: {hb} has not agreed to be compared."
    finally:
        set_consent(ws, ha, granted=False)
        set_consent(ws, hb, granted=False)


@pytest.mark.parametrize(("values", "field"), [(["abc", None], "compare-a"), ([None, "1 OR 1=1"], "compare-b"),
                                               (["12345", None], "compare-a"), ([None, [1]], "compare-b")])
def test_compare_page_refuses_crafted_keys(callbacks: Any, caplog: pytest.LogCaptureFixture, values: list[Any],
                                           field: str) -> None:
    caplog.set_level(logging.INFO)
    assert_refused(callbacks.post(PAIR, values), field, caplog)
