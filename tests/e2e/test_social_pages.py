"""The Year-in-review and Compare pages in a real browser (headless Chromium) against the demo warehouse: the card
image really loads, the figures follow the listener filter, and Compare shows the library's own score only once
both listeners agreed. Expected values come from direct queries and from the library functions."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from .test_dashboard import DOCS_SHOTS, TRACK_JS, choose, query, settle

pytestmark = pytest.mark.browser


def _open(page: Any, base: str, key: str, title: str) -> None:
    if not page.url.startswith(base):
        page.goto(base + "/", wait_until="load")
        page.evaluate(TRACK_JS)
    page.click(f"#nav-{key}")
    page.wait_for_function(f"() => (document.querySelector('#page h1') || {{}}).textContent === {title!r}",
                           timeout=20_000)
    settle(page)


def _shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"dashboard-{name}.png"), full_page=True)
    if os.environ.get("TUNELAKE_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts / f"dashboard-{name}.png", DOCS_SHOTS / f"dashboard-{name}.png")


def test_year_in_review_page(dash_url: str, page: Any, dash_workspace: Path, artifacts: Path) -> None:
    _open(page, dash_url, "wrapped", "Year in review")
    page.wait_for_selector("#wrapped-image")
    first = query(dash_workspace, "SELECT handle FROM dim_user ORDER BY handle LIMIT 1")[0][0]
    assert page.inner_text("#wrapped-title").startswith(f"{first} · ")  # no listener picked: the first one
    key, handle = query(dash_workspace, "SELECT user_key, handle FROM dim_user ORDER BY handle")[2]
    choose(page, "f-user", handle)
    page.wait_for_function(f"() => (document.querySelector('#wrapped-title') || {{}}).textContent"
                           f".startsWith({handle + ' · '!r})", timeout=20_000)
    settle(page)
    year = int(page.inner_text("#wrapped-title").rsplit(" ", 1)[1])
    ms = query(dash_workspace, f"SELECT sum(ms_played) FROM fact_play WHERE user_key = ? AND date_key // 10000 = "
                               f"{year}", [key])[0][0]
    assert page.inner_text("#wrapped-facts dd >> nth=0") == f"{round(ms / 60000):,}"
    size = page.evaluate("() => { const i = document.querySelector('#wrapped-image'); "
                         "return [i.complete, i.naturalWidth, i.naturalHeight]; }")
    assert size[0] and size[1] > 0 and abs(size[2] / size[1] - 1350 / 1080) < 0.01  # the SVG card rendered
    assert page.get_attribute("#wrapped-png", "download") == f"wrapped-{handle}-{year}.png"
    assert page.console_log.errors == []
    _shot(page, artifacts, "wrapped")


def test_compare_page(dash_url: str, page: Any, dash_workspace: Path, artifacts: Path) -> None:
    from tunelake.analytics.compare import compare
    from tunelake.analytics.consent import set_consent
    from tunelake.warehouse.store import open_warehouse
    from tunelake.workspace import open_workspace

    ws = open_workspace(dash_workspace)
    users = query(dash_workspace, "SELECT user_key, handle FROM dim_user ORDER BY handle")
    (ka, ha), (kb, hb) = users[0], users[1]
    for h in (ha, hb):
        set_consent(ws, h)
    try:
        con = open_warehouse(ws)
        try:
            expected = compare(con, ka, kb)
        finally:
            con.close()
        _open(page, dash_url, "compare", "Compare listeners")
        page.wait_for_function("() => (document.querySelector('#compare-note') || {}).textContent.includes('agreed')",
                               timeout=20_000)
        assert page.inner_text("#compare-note").startswith("2 listeners agreed to be compared")
        choose(page, "compare-a", ha)
        choose(page, "compare-b", hb)
        page.wait_for_selector("#compare-score", timeout=20_000)
        settle(page)
        assert page.inner_text("#compare-score") == str(expected["score"])
        assert page.inner_text("#compare-explanation") == expected["explanation"]
        assert page.console_log.errors == []
        _shot(page, artifacts, "compare")
    finally:
        for h in (ha, hb):
            set_consent(ws, h, granted=False)
