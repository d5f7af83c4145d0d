"""ListenBrainz listens → play rows: the export (`listens/YYYY/M.jsonl` in the zip ListenBrainz sends; older exports
are one JSON array), and the JSON of its API (`{"listen_type": "import", "payload": [...]}`, which is also what
`tunelake export listenbrainz` writes, and `{"payload": {"listens": [...]}}` from get-listens).

A listen is `listened_at` (Unix seconds, UTC, when the track started) and `track_metadata` (`artist_name`,
`track_name`, optional `release_name`, `additional_info` and, in exports, ListenBrainz's own `mbid_mapping`).
MBIDs are taken from `additional_info` (what the scrobbler sent) or else `mbid_mapping`; a Spotify track URL in
`additional_info.spotify_id` gives the track id directly; `additional_info` is kept whole as JSON text.
`user_name` is never kept (a listener's handle on another service is personal data).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from tunelake.errors import InputError
from tunelake.sources.export import decode_json
from tunelake.sources.scrobbles import (
    Reject,
    Scrobble,
    build,
    epoch_time,
    field,
    jtype,
    mbid,
    now_utc,
    spotify_track_id,
)
from tunelake.sources.types import Parsed

SOURCE = "listenbrainz"
# submission_client of the listens ListenBrainz itself made from Spotify: its Spotify connector (recently-played)
# and its importer of Spotify's extended streaming history (and `tunelake export listenbrainz`, which writes
# Spotify plays the same way). Their listened_at is Spotify's end of playback.
FROM_SPOTIFY = frozenset({"listenbrainz", "ListenBrainz Archive Importer", "tunelake"})  # tunelake: its export


def _records(data: bytes, name: str) -> tuple[list[Any], str, dict[int, Reject]]:
    """(records, layout, records that are not JSON) of any of the three layouts."""
    text = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:1] == b"[":
        doc, _ = decode_json(data, name)
        return doc, "listenbrainz-array", {}
    lines = text.splitlines()
    if len([ln for ln in lines[:2] if ln.strip()]) > 1:
        for ln in lines[:5]:  # JSON lines: one of the first lines is a listen (a broken first line is quarantined)
            try:
                head = orjson.loads(ln)
            except orjson.JSONDecodeError:
                continue
            if isinstance(head, dict) and "listened_at" in head:
                return _jsonl(lines)
    doc, _ = decode_json(data, name)
    if isinstance(doc, dict) and isinstance(doc.get("payload"), list):
        return doc["payload"], "listenbrainz-import", {}
    if isinstance(doc, dict) and isinstance(doc.get("payload"), dict) and isinstance(
            doc["payload"].get("listens"), list):
        return doc["payload"]["listens"], "listenbrainz-api", {}
    if isinstance(doc, dict) and "listened_at" in doc:
        return [doc], "listenbrainz-jsonl", {}
    raise InputError(f"expected ListenBrainz listens (JSON lines, an array, or a submit-listens payload), found a "
                     f"JSON {jtype(doc)}", file=name)


def _jsonl(lines: list[bytes]) -> tuple[list[Any], str, dict[int, Reject]]:
    records: list[Any] = []
    bad: dict[int, Reject] = {}
    for ln in lines:
        if not ln.strip():
            continue
        try:
            records.append(orjson.loads(ln))
        except orjson.JSONDecodeError as exc:
            bad[len(records)] = Reject("not_json", f"line is not valid JSON ({exc.msg})")
            records.append(ln.decode("utf-8", "replace"))
    return records, "listenbrainz-jsonl", bad


def _read(r: dict[str, Any], now: datetime) -> Scrobble:
    at = field(r, "listened_at", int, "listened_at", required=True)
    meta = field(r, "track_metadata", dict, "track_metadata", required=True)
    artist = field(meta, "artist_name", str, "track_metadata.artist_name", required=True, empty_ok=False)
    track = field(meta, "track_name", str, "track_metadata.track_name", required=True, empty_ok=False)
    release = field(meta, "release_name", str, "track_metadata.release_name")
    info = field(meta, "additional_info", dict, "track_metadata.additional_info") or {}
    mapping = field(meta, "mbid_mapping", dict, "track_metadata.mbid_mapping") or {}
    p = "track_metadata.additional_info."
    rec = mbid(info.get("recording_mbid"), p + "recording_mbid")
    rel = mbid(info.get("release_mbid"), p + "release_mbid")
    artists = field(info, "artist_mbids", list, p + "artist_mbids")
    if rec is None:
        rec = mbid(mapping.get("recording_mbid"), "track_metadata.mbid_mapping.recording_mbid")
    if rel is None:
        rel = mbid(mapping.get("release_mbid"), "track_metadata.mbid_mapping.release_mbid")
    if not artists:
        artists = field(mapping, "artist_mbids", list, "track_metadata.mbid_mapping.artist_mbids")
    artist_ids = [m for i, a in enumerate(artists or []) if (m := mbid(a, f"{p}artist_mbids[{i}]"))]
    length = field(info, "duration_ms", int, p + "duration_ms")
    if length is None:
        seconds = field(info, "duration", int, p + "duration")
        length = seconds * 1000 if seconds is not None else None
    if length is not None and length < 0:
        raise Reject("negative_duration", f"field '{p}duration_ms' is negative ({length})")
    when = epoch_time(at, "listened_at", now)
    start: datetime | None = when
    end = None
    if info.get("music_service") == "spotify.com" and info.get("submission_client") in FROM_SPOTIFY:
        # ListenBrainz's own Spotify connector and importer write Spotify's time, the END of the playback; the
        # importer keeps Spotify's ms_played, which gives the start; the connector's start is unknown.
        end = when
        played = field(info, "ms_played", int, p + "ms_played")
        start = when - timedelta(milliseconds=played) if played is not None and played >= 0 else None
    return Scrobble(start, artist, track, release, length_ms=length, ended=end,
                    track_id=spotify_track_id(info.get("spotify_id") or info.get("origin_url"), p + "spotify_id"),
                    recording_mbid=rec, release_mbid=rel, artist_mbids=artist_ids or None,
                    additional_info=info or None)


def _without_user(r: Any) -> Any:
    return {k: v for k, v in r.items() if k != "user_name"} if isinstance(r, dict) else r


def parse_listenbrainz(data: bytes, name: str, *, now: datetime | None = None) -> Parsed:
    """A ListenBrainz listens file → play rows, `source = 'listenbrainz'`."""
    records, layout, not_json = _records(data, name)
    now = now or now_utc()

    def read_one(r: dict[str, Any]) -> Scrobble:
        return _read(r, now)

    if not_json:  # lines that are not JSON are quarantined as written, in their place
        parsed = build([{} if i in not_json else r for i, r in enumerate(records)], read_one, SOURCE, layout,
                       quarantine_record=_without_user)
        keep = [q for q in parsed.quarantine if q["record_no"] not in not_json]
        keep += [{"record_no": i, "reason": rej.reason, "message": rej.message, "record": records[i]}
                 for i, rej in not_json.items()]
        parsed.quarantine = sorted(keep, key=lambda q: q["record_no"])
        return parsed
    return build(records, read_one, SOURCE, layout, quarantine_record=_without_user)
