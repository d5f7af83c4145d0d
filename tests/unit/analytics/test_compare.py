"""Compatibility of two listeners and the consent it needs, against values worked out by hand from pair.py."""

from __future__ import annotations

import math
from datetime import date

import duckdb
import pytest

from tunelake.analytics.compare import compare, compatibility_label, cosine
from tunelake.analytics.consent import ConsentError, has_consented, require_consent, set_consent
from tunelake.errors import InputError

from .pair import build_pair


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(":memory:")
    build_pair(c)
    return c


def test_cosine_hand_cases() -> None:
    assert cosine({"a": 1.0}, {"a": 5.0})[0] == pytest.approx(1.0)
    value, parts = cosine({"a": 3, "b": 4}, {"a": 1, "c": 1})  # 3 / (5 · √2)
    assert value == pytest.approx(3 / (5 * math.sqrt(2))) and parts == pytest.approx({"a": 3 / (5 * math.sqrt(2))})
    assert cosine({}, {"a": 1.0}) == (0.0, {})


def test_unweighted_score_shared_items_and_suggestions(con) -> None:
    r = compare(con, "ana", "ben", half_life_days=None)
    # ana's streams by artist: x1 = s1×4 + s2×1 = 5, x2 = s3×3 = 3 (her 10-second s4 is no stream);
    # ben's: x1 1, x2 1, x3 2, x4 1. Cosine = (5·1 + 3·1) / (√34 · √7).
    assert r["cosine"] == pytest.approx(8 / math.sqrt(238))
    assert r["score"] == 52 and r["label"] == "a lot in common"
    assert [a["artist_id"] for a in r["shared_artists"]] == ["x1", "x2"]
    assert [a["part_of_score"] for a in r["shared_artists"]] == pytest.approx([5 / 8, 3 / 8])
    assert r["shared_artists"][0]["share_a"] == pytest.approx(5 / 8) and r["shared_artists"][0]["share_b"] == 0.2
    assert r["genre_cosine"] == pytest.approx(8 / math.sqrt(34 * 6))  # rock 5, jazz 3 · rock 1, pop 2, jazz 1
    assert (r["shared_artist_count"], r["artist_jaccard"]) == (2, 0.5)
    assert [(t["track_id"], t["streams_a"], t["streams_b"]) for t in r["shared_tracks"]] == [("s1", 4, 1),
                                                                                             ("s3", 3, 1)]
    # what ana might try from ben: ben's s5 (by x4, new to her); s4 is out, she skipped it once, so played it
    assert r["for_a"]["tracks"] == [{"track_id": "s5", "track_name": "Track s5", "artist_name": "Artist x4",
                                     "new_artist": True}]
    assert [a["artist_id"] for a in r["for_a"]["artists"]] == ["x4"]
    assert [(t["track_id"], t["new_artist"]) for t in r["for_b"]["tracks"]] == [("s2", False)]
    assert r["for_b"]["artists"] == []
    assert (r["a"]["streams"], r["b"]["streams"], r["a"]["artists"], r["b"]["artists"]) == (8, 5, 2, 4)
    assert "Artist x1 (62%)" in r["explanation"] and "share 2 of 4 artists" in r["explanation"]


def test_recency_weighting(con) -> None:
    def w(age_days: float) -> float:
        return 0.5 ** (age_days / 365)

    # ages from ana's last day (2024-03-13): s2 2023-03-11 → 368 days; s1 on 03-09, 03-10 (×2), 03-13;
    # s3 on 03-08, 03-10, 03-12. Ben's plays are all on his last day: weight 1.
    x1 = w(368) + w(4) + 2 * w(3) + w(0)
    x2 = w(5) + w(3) + w(1)
    r = compare(con, "ana", "ben")
    assert r["half_life_days"] == 365
    assert r["cosine"] == pytest.approx((x1 + x2) / (math.sqrt(x1**2 + x2**2) * math.sqrt(7)))
    assert r["cosine"] != pytest.approx(compare(con, "ana", "ben", half_life_days=None)["cosine"])
    assert "half-life 365 days" in r["explanation"]


def test_period_and_disjoint_listeners(con) -> None:
    r = compare(con, "ana", "ben", half_life_days=None, start=date(2024, 1, 1), end=date(2024, 12, 31))
    assert r["cosine"] == pytest.approx(7 / (5 * math.sqrt(7)))  # without 2023's s2: x1 4, x2 3
    none = compare(con, "ana", "cy")
    assert (none["score"], none["label"], none["shared_artists"], none["shared_tracks"]) == (
        0, "different worlds", [], [])
    assert none["genre_cosine"] is None  # cy's only track has no genre: unknown, not 0
    assert "share no artist" in none["explanation"]
    assert compare(con, "ben", "cy", half_life_days=None)["cosine"] == pytest.approx(1 / math.sqrt(7))


def test_bad_requests(con) -> None:
    with pytest.raises(InputError, match="themselves"):
        compare(con, "ana", "ana")
    with pytest.raises(InputError, match="cy has no streams in this period"):
        compare(con, "ana", "cy", start=date(2024, 1, 1))
    with pytest.raises(InputError, match="unknown user 'zed'"):
        compare(con, "ana", "zed")
    with pytest.raises(InputError, match="half-life"):
        compare(con, "ana", "ben", half_life_days=0)


def test_labels() -> None:
    assert [compatibility_label(s) for s in (0, 14, 15, 39, 40, 69, 70, 100)] == [
        "different worlds", "different worlds", "some common ground", "some common ground", "a lot in common",
        "a lot in common", "kindred ears", "kindred ears"]


def test_consent_grant_revoke_and_refusal(tmp_path) -> None:
    from tunelake.lake.manifest import register_user
    from tunelake.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws")
    with ws.writing():
        for h in ("ana", "ben"):
            register_user(ws.lake, h)
    lake = ws.lake
    assert not has_consented(lake, "ana")  # never asked means no
    with pytest.raises(ConsentError, match="ana and ben have not agreed") as exc:
        require_consent(lake, ["ana", "ben"])
    assert "field 'consent'" in str(exc.value) and "tunelake consent grant" in exc.value.hint
    first = set_consent(ws, "ana")
    assert first["compare"]["granted"] is True
    assert set_consent(ws, "ana") == first  # idempotent: a second grant changes nothing
    assert lake.read_json("_manifest/consent/ana.json")["purposes"] == first
    with pytest.raises(ConsentError, match=r"^field 'consent': ben has not agreed"):
        require_consent(lake, ["ana", "ben"])
    set_consent(ws, "ben")
    require_consent(lake, ["ana", "ben"])  # both agreed: no error
    set_consent(ws, "ben", granted=False)
    assert not has_consented(lake, "ben")
    with pytest.raises(ConsentError, match="ben has not agreed"):
        require_consent(lake, ["ana", "ben"])
    with pytest.raises(InputError, match="unknown user 'zed'"):
        set_consent(ws, "zed")
    with pytest.raises(InputError, match="purpose"):
        set_consent(ws, "ana", "sell")
    assert not lake.listdir("_manifest/txn")  # every consent write committed
