"""Crafted callback inputs, sent straight to `/_dash-update-component` as a script (not the page) would: each
gets a short 400 naming the field and leaves no traceback in the log, while the values the page itself sends
keep giving the same numbers as a direct query on fact_play."""

from __future__ import annotations

import logging
from typing import Any

import pytest

FILTERS = "filters.data"
CONTROLS = "f-start.value,f-end.value,f-user.value,f-segment.value"

# (store content, field the 400 must name)
CRAFTED_STORES = [
    ({"start": "2024-13-45"}, "start"),
    ({"end": "2024-02-30"}, "end"),
    ({"start": "'; DROP TABLE fact_play; --"}, "start"),
    ({"start": "20240101"}, "start"),  # date.fromisoformat takes it; the date input never sends it
    ({"end": 20240101}, "end"),
    ({"start": ["2024-01-01"]}, "start"),
    ({"user": "abc"}, "user"),
    ({"user": "1 OR 1=1"}, "user"),
    ({"user": [1, 2]}, "user"),
    ({"user": list(range(100_000))}, "user"),
    ({"user": 1.5}, "user"),
    ({"user": True}, "user"),
    ({"user": "9" * 30}, "user"),
    ({"user": {"$ne": 1}}, "user"),
    ({"segment": "x"}, "segment"),
    ({"segment": 99}, "segment"),  # an integer, but no such segment
    ({"segment": [0]}, "segment"),
    ({"segment": 2.5}, "segment"),
    ({"evil": 1}, "filters"),
    ("not-an-object", "filters"),
    ([1, 2, 3], "filters"),
]


def assert_refused(resp: Any, field: str, caplog: pytest.LogCaptureFixture) -> None:
    body = resp.get_data(as_text=True)
    assert resp.status_code == 400, body[:300]
    assert resp.mimetype == "text/plain"
    assert f"field '{field}'" in body and len(body) < 200 and "<" not in body, body
    assert not any(r.exc_info for r in caplog.records), "a refused filter must not log a traceback"
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("store", "field"), CRAFTED_STORES, ids=[str(s)[:30] for s, _ in CRAFTED_STORES])
def test_crafted_store_gets_400_without_traceback(callbacks: Any, caplog: pytest.LogCaptureFixture,
                                                  store: Any, field: str) -> None:
    caplog.set_level(logging.INFO)
    for chart in ("kpis.children", "top-artists.figure", "segment-map.figure", "recs-list.children"):
        caplog.clear()
        assert_refused(callbacks.post(FILTERS, [store], chart), field, caplog)


CRAFTED_CONTROLS = [
    (["2024-13-45", None, None, None], "start"),
    ([None, "'; DROP", None, None], "end"),
    ([None, 7, None, None], "end"),
    ([None, None, "abc", None], "user"),
    ([None, None, list(range(100_000)), None], "user"),
    ([None, None, "123", None], "user"),  # an integer, but no listener has that key
    ([None, None, None, "next segment"], "segment"),  # one past the last segment: replaced below
    ([None, None, None, {"a": 1}], "segment"),
]


@pytest.mark.parametrize(("values", "field"), CRAFTED_CONTROLS, ids=[str(v)[:30] for v, _ in CRAFTED_CONTROLS])
def test_crafted_controls_get_400_without_traceback(callbacks: Any, caplog: pytest.LogCaptureFixture, sql: Any,
                                                    values: list[Any], field: str) -> None:
    if values[3] == "next segment":
        (top,), = sql("SELECT max(segment) FROM user_segment")
        values = [None, None, None, int(top) + 1]
    caplog.set_level(logging.INFO)
    assert_refused(callbacks.post(CONTROLS, values), field, caplog)


CRAFTED_CLICKS = [
    ("over-time.clickData", {"points": [{"customdata": ["2024-13-45", "2024-01-07", 5]}]}),
    ("over-time.clickData", {"points": [{"customdata": "2024-01-01"}]}),
    ("over-time.clickData", {"points": "all"}),
    ("over-time.clickData", ["points"]),
    ("segment-sizes.clickData", {"points": [{"customdata": [99]}]}),
    ("segment-sizes.clickData", {"points": [{"customdata": ["'; DROP"]}]}),
    ("segment-map.clickData", {"points": [7]}),
    ("segment-map.clickData", {"points": [{"customdata": 3}]}),
]


@pytest.mark.parametrize(("inputs", "click"), CRAFTED_CLICKS, ids=[f"{i}-{str(c)[:30]}" for i, c in CRAFTED_CLICKS])
def test_crafted_clicks_get_400_without_traceback(callbacks: Any, caplog: pytest.LogCaptureFixture,
                                                  inputs: str, click: Any) -> None:
    caplog.set_level(logging.INFO)
    resp = callbacks.post(inputs, [click])
    assert resp.status_code == 400, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "text/plain" and len(resp.get_data(as_text=True)) < 200
    assert not any(r.exc_info for r in caplog.records) and "Traceback" not in caplog.text


def test_crafted_pathname_shows_the_overview(callbacks: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    resp = callbacks.post("url.pathname", [["/", "/quality"]])
    assert resp.status_code == 200
    assert resp.get_json()["response"]["page"]["children"]["props"]["children"][0]["props"]["children"] == \
        "Overview"
    assert not any(r.exc_info for r in caplog.records)


def _kpis(callbacks: Any, store: dict[str, Any]) -> dict[str, str]:
    resp = callbacks.post(FILTERS, [store], "kpis.children")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    tiles = resp.get_json()["response"]["kpis"]["children"]
    return {t["props"]["id"]: t["props"]["data-value"] for t in tiles}


def test_valid_filters_still_give_the_sql_numbers(callbacks: Any, sql: Any) -> None:
    """What the page sends (ISO dates, the user key as a string, the segment as an integer) is answered as
    before: the plays KPI equals a direct count on fact_play for each filter."""
    (key,), = sql("SELECT user_key FROM dim_user ORDER BY handle LIMIT 1 OFFSET 2")
    (lo, hi), = sql("""SELECT min(date), max(date) FROM dim_date
                       WHERE month_start = (SELECT min(month_start) FROM dim_date) + INTERVAL 1 MONTH""")
    (seg, members), = sql("SELECT segment, count(*) FROM user_segment GROUP BY 1 ORDER BY 1 DESC LIMIT 1")
    k_lo, k_hi = int(lo.strftime("%Y%m%d")), int(hi.strftime("%Y%m%d"))
    cases = [
        ({}, "TRUE", []),
        ({"user": str(key)}, "user_key = ?", [key]),
        ({"start": lo.isoformat(), "end": hi.isoformat(), "user": str(key), "segment": None},
         "user_key = ? AND date_key BETWEEN ? AND ?", [key, k_lo, k_hi]),
        ({"segment": int(seg)}, "user_key IN (SELECT user_key FROM user_segment WHERE segment = ?)", [seg]),
        ({"start": lo.isoformat(), "end": None, "user": None, "segment": None}, "date_key >= ?", [k_lo]),
    ]
    seen = set()
    for store, where, params in cases:
        (plays,), = sql(f"SELECT count(*) FROM fact_play WHERE {where}", params)
        got = _kpis(callbacks, store)
        assert int(got["kpi-plays"]) == plays, store
        seen.add(plays)
    assert len(seen) == len(cases), "each filter should select a different number of plays"
    assert int(_kpis(callbacks, {"segment": int(seg)})["kpi-listeners"]) == members


def test_valid_controls_and_clicks_are_answered_as_before(callbacks: Any, sql: Any) -> None:
    (key,), = sql("SELECT user_key FROM dim_user ORDER BY handle LIMIT 1")
    (seg,), = sql("SELECT min(segment) FROM user_segment")
    resp = callbacks.post(CONTROLS, ["2024-01-01", "", str(key), seg])
    assert resp.status_code == 200
    out = resp.get_json()["response"]
    assert out["filters"]["data"] == {"start": "2024-01-01", "end": None, "user": str(key), "segment": seg}
    assert out["f-summary"]["children"] == f"Filtered: 2024-01-01 → … · 1 listener · segment {seg}"

    resp = callbacks.post("over-time.clickData", [{"points": [{"customdata": ["2024-03-04", "2024-03-10", 12]}]}])
    assert resp.status_code == 200
    assert resp.get_json()["response"] == {"f-start": {"value": "2024-03-04"}, "f-end": {"value": "2024-03-10"}}
    for graph, data in (("segment-sizes", [seg]), ("segment-map", [seg, "someone"])):
        resp = callbacks.post(f"{graph}.clickData", [{"points": [{"customdata": data}]}])
        assert resp.status_code == 200
        assert resp.get_json()["response"] == {"f-segment": {"value": seg}}
    # a click on a point without customdata (the listeners line) changes nothing, as before
    resp = callbacks.post("over-time.clickData", [{"points": [{"x": "2024-03-04", "y": 3}]}])
    assert resp.status_code == 200 and resp.get_json()["response"] == {}
