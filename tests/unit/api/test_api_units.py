"""Small hand-computed cases for the API module's pure parts."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from tunelake.curate import pull
from tunelake.curate.plays import conform
from tunelake.sources import types
from tunelake.sources.spotify import client, rows
from tunelake.sources.types import TS
from tunelake.synthetic.server import base62_id, parse_fault_spec


def plays(rows: list[tuple[str, str, str]]) -> pa.Table:
    return conform(
        pa.table(
            {
                "track_id": pa.array([r[0] for r in rows], pa.string()),
                "ended_at": pa.array([datetime.fromisoformat(r[1]) for r in rows], TS),
                "source": pa.array([r[2] for r in rows], pa.string()),
            }
        )
    )


def test_find_overlaps_is_one_to_one_and_respects_tolerance() -> None:
    existing = plays(
        [
            ("A", "2024-01-01T10:00:00", "extended"),
            ("A", "2024-01-01T10:05:00", "extended"),
            ("B", "2024-01-01T10:00:00", "api"),
        ]
    )
    incoming = plays(
        [
            ("A", "2024-01-01T10:00:00.400", "api"),  # same playback, ms precision
            (
                "A",
                "2024-01-01T10:00:30",
                "api",
            ),  # within 90 s but the close export play is taken → next is 4.5 min away
            ("A", "2024-01-01T10:04:00", "api"),  # 60 s before the second export play
            ("B", "2024-01-01T10:00:00", "api"),  # only an API play there: not an export match
            ("C", "2024-01-01T10:00:00", "api"),
        ]
    )
    assert pull.export_matches(existing, incoming, 90) == [True, False, True, False, False]
    assert pull.export_matches(existing, incoming, 0.1) == [False, False, False, False, False]


def test_play_rows_use_duration_and_ms_precision() -> None:
    items = [
        {
            "played_at": "2024-03-01T12:00:00.123Z",
            "track": {
                "id": "t" * 22,
                "name": "Song",
                "duration_ms": 200_000,
                "artists": [{"name": "Band"}],
                "album": {"name": "LP"},
            },
        },
        {"played_at": "2024-03-01T12:01:00.000Z", "track": None},
    ]
    t = rows.play_rows(items, 7, "b1")
    assert t.num_rows == 1
    row = t.to_pylist()[0]
    assert row["ended_at"] == datetime(2024, 3, 1, 12, 0, 0, 123000)
    assert (row["ms_played"], row["ts_precision"], row["source"], row["content_type"]) == (
        200_000,
        "ms",
        "api",
        "track",
    )
    assert (row["artist_name"], row["album_name"], row["user_key"], row["batch_id"]) == ("Band", "LP", 7, "b1")


def test_fault_spec() -> None:
    assert parse_fault_spec("429x3:2, 503x2,slowx5:1.5,ttl:30,500") == [
        {"kind": "429", "count": 3, "retry_after": 2},
        {"kind": "503", "count": 2},
        {"kind": "slow", "count": 5, "delay": 1.5},
        {"kind": "ttl", "seconds": 30.0},
        {"kind": "500", "count": 1},
    ]
    with pytest.raises(ValueError, match="unknown fault"):
        parse_fault_spec("418x1")


def test_retry_after_header() -> None:
    assert client._retry_after({"Retry-After": "7"}) == 7
    assert client._retry_after({}) == 1 and client._retry_after({"Retry-After": "soon"}) == 1


def test_ids_are_spotify_shaped() -> None:
    i = base62_id("x")
    assert len(i) == 22 and i.isalnum() and base62_id("x") == i != base62_id("y")


def test_schemas_are_declared_for_every_curated_api_table() -> None:
    assert set(types.API_TABLES) == {
        "top_items",
        "saved_tracks",
        "playlist_items",
        "api_tracks",
        "api_artists",
        "api_albums",
        "api_audio_features",
    }
    assert types.TOP_ITEMS.names == [
        "user_key",
        "snapshot_date",
        "time_range",
        "item_type",
        "rank",
        "item_id",
        "item_name",
    ]
