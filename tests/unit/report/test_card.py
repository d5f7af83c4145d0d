"""The Year-in-review card: its text from the hand-made warehouse of tests/unit/analytics/pair.py, and the images."""

from __future__ import annotations

import struct
from typing import Any

import duckdb
import pytest

from tunelake.analytics.wrapped import year_in_review
from tunelake.report.card import card_lines, render_card

from ..analytics.pair import build_pair


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(":memory:")
    build_pair(c)
    return c


def test_card_text(con) -> None:
    t = card_lines(year_in_review(con, "ana", 2024))
    assert t["title"] == "ana · 2024 in review" and t["minutes"] == "22"  # 1 310 s = 21.8 min
    assert t["sub"] == "minutes of music · 8 plays · 3 artists · 5 days"
    assert t["personality"] == "You listen like: Night owls"
    assert t["traits"] == "skip rate -2.0σ, night share +1.5σ, log plays +0.3σ"
    assert t["artists"] == ["Artist x1", "Artist x2", "Artist x3"] and t["tracks"][0] == "Track s1"
    assert t["genres"] == "rock 61% · jazz 38% · pop 1%"
    assert dict(t["facts"]) == {"Biggest day": "Sun 10 Mar · 10 min",
                                "Longest streak": "3 days (Fri 8 Mar → Sun 10 Mar)",
                                "Discovery": "2 new artists (50% of plays)",
                                "Year before": "+555% minutes vs 2023 (top artist then: Artist x1)"}
    assert dict(t["beyond"]) == {"Skips": "1 (12%)", "Completion": "82% mean, 75% heard to the end",
                                 "Sessions": "5, median 3 min",
                                 "Podcasts": "70 min, 2 shows (most: Deep Talk)"}


def test_unknowns_print_as_a_dash(con) -> None:
    t = card_lines(year_in_review(con, "cy", 2022))
    assert t["genres"] == "–" and t["personality"] == "Listener type: – (no segments yet)"
    facts = dict(t["facts"])
    assert facts["Year before"] == "no listening in 2021 to compare with"
    assert facts["Discovery"].endswith("your first year")
    assert dict(t["beyond"])["Podcasts"] == "none"
    assert dict(t["beyond"])["Skips"] == "– (this history does not record skips)"


def test_png_and_svg(con, requires: Any) -> None:
    requires("matplotlib")
    r = year_in_review(con, "ana", 2024)
    import matplotlib

    with matplotlib.rc_context({"savefig.bbox": "tight", "savefig.dpi": 72}):  # what the report sets globally
        png = render_card(r, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1080, 1350)  # IHDR width, height: the 4:5 share format
    svg = render_card(r, "svg").decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for text in ("What Wrapped never shows", "Artist x1", "Night owls", "Deep Talk"):
        assert text in svg  # text stays text
    assert render_card(r, "svg") == render_card(r, "svg")  # no date, fixed ids: the same review, the same file
    from tunelake.errors import InputError

    with pytest.raises(InputError, match="card format"):
        render_card(r, "gif")


def test_without_matplotlib_the_error_names_the_extra(con, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tunelake.errors import ConfigError

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # what an install without the extra looks like
    with pytest.raises(ConfigError, match="needs Matplotlib") as exc:
        render_card(year_in_review(con, "ana", 2024), "png")
    assert exc.value.hint == "pip install 'tunelake[report]'"
