"""Account data ("Download your data"): StreamingHistory_music_N, older StreamingHistoryN, _podcast_N, _audiobook_N.

These rows carry only an end time in UTC to the minute (`endTime`, "YYYY-MM-DD HH:MM"), names and `msPlayed`: no
URI, no platform, no country. They become curated plays with `ts_precision = 'min'` and `source = 'account'`;
the track (or episode) id is filled later by `curate.resolve` from the names. What a record is follows from its
fields, not from the file name, so a renamed or mixed file is still read correctly.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from tunelake.sources.export import (
    MIN_TS,
    Parsed,
    _column,
    drop_bad_records,
    exact_integers,
    parse_times,
    read_records,
)
from tunelake.sources.types import TS

ACCOUNT_FIELDS: dict[str, str] = {
    "endTime": "str",
    "msPlayed": "int",
    "artistName": "str",
    "trackName": "str",
    "podcastName": "str",
    "episodeName": "str",
    "audiobookName": "str",
    "chapterName": "str",
    "authorName": "str",
}


def _bad_rows(mask: pa.Array, bad: dict[int, tuple[str, str]], reason: str, message) -> None:
    if pc.any(mask).as_py():
        for i, b in enumerate(mask.to_pylist()):
            if b and i not in bad:
                bad[i] = (reason, message(i))


def parse_account(data: bytes, name: str, *, now: datetime | None = None) -> Parsed:
    """Account-data streaming history (music, podcast or audiobook) → normalised play rows, names only."""
    records, original, bad, unknown = read_records(data, name, ACCOUNT_FIELDS)
    n = len(records)
    written_as_int = exact_integers(data)
    cols = {f: _column(records, f, t, bad, written_as_int) for f, t in ACCOUNT_FIELDS.items()}

    for req in ("endTime", "msPlayed"):
        missing = pc.is_null(cols[req])
        if pc.any(missing).as_py():
            for i, m in enumerate(missing.to_pylist()):
                if m and i not in bad:  # a null value is of the wrong type, as in the extended history
                    present = req in records[i]
                    bad[i] = ("wrong_type" if present else "missing_field",
                              f"field '{req}' is {'null' if present else 'missing'}")

    raw_ts = cols["endTime"]
    ended_at = parse_times(raw_ts, "%Y-%m-%d %H:%M")
    # Some tools rewrite endTime with seconds; a time with seconds is still a valid end time (truncated below).
    with_s = parse_times(raw_ts, "%Y-%m-%d %H:%M:%S")
    ended_at = pc.coalesce(ended_at, pc.floor_temporal(with_s, unit="minute")).cast(TS)
    _bad_rows(pc.and_(pc.is_null(ended_at), pc.is_valid(raw_ts)), bad, "bad_timestamp",
              lambda i: f"field 'endTime' is not 'YYYY-MM-DD HH:MM': {records[i].get('endTime')!r}")
    now = now or datetime.utcnow()
    out = pc.or_(pc.less(ended_at, pa.scalar(MIN_TS, TS)), pc.greater(ended_at, pa.scalar(now, TS)))
    _bad_rows(pc.fill_null(out, False), bad, "ts_out_of_range",
              lambda i: f"field 'endTime' {records[i].get('endTime')} is before 2006 or in the future")
    _bad_rows(pc.fill_null(pc.less(cols["msPlayed"], 0), False), bad, "negative_ms_played",
              lambda i: f"field 'msPlayed' is negative ({records[i].get('msPlayed')})")

    is_track = pc.or_(pc.is_valid(cols["trackName"]), pc.is_valid(cols["artistName"]))
    is_episode = pc.or_(pc.is_valid(cols["episodeName"]), pc.is_valid(cols["podcastName"]))
    is_book = pc.or_(pc.is_valid(cols["audiobookName"]), pc.is_valid(cols["chapterName"]))
    content = pc.case_when(pc.make_struct(is_track, is_episode, is_book),
                           pa.scalar("track"), pa.scalar("episode"), pa.scalar("audiobook"), pa.scalar("unknown"))
    null_s = pa.nulls(n, pa.string())
    rows = pa.table(
        {
            "ended_at": ended_at,
            "ts_precision": pa.array(["min"] * n, pa.string()),
            "ms_played": cols["msPlayed"],
            "content_type": content,
            "media_type": pa.array(["audio"] * n, pa.string()),
            "track_id": null_s,
            "track_name": cols["trackName"],
            "artist_name": cols["artistName"],
            "episode_name": cols["episodeName"],
            "show_name": cols["podcastName"],
            "audiobook_title": cols["audiobookName"],
            "chapter_title": cols["chapterName"],
            "source": pa.array(["account"] * n, pa.string()),
            "record_no": pa.array(range(n), pa.int32()),
        }
    )
    rows, quarantine = drop_bad_records(rows, original, bad)
    return Parsed(rows, n, quarantine, unknown, "account")
