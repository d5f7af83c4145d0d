"""YourLibrary.json and PlaylistN.json → curated `saved_tracks` and `playlist_items` rows.

Old exports (2019) carry no URIs: tracks are then resolved by name later (`curate.resolve`); other items without a
URI get a surrogate id from their names. Every list entry is one record read; entries that are not objects or name
nothing are quarantined with a reason, like listening records.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from tunelake.errors import InputError
from tunelake.sources.export import Parsed, decode_json, got, not_json
from tunelake.sources.names import surrogate_id
from tunelake.sources.types import PLAYLIST_ITEMS, SAVED_TRACKS, TS, conform

# list name → (item_type, uri prefix, field holding the name, field holding the artist/publisher, album/show field)
LIBRARY_LISTS: dict[str, tuple[str, str, str, str | None, str | None]] = {
    "tracks": ("track", "spotify:track:", "track", "artist", "album"),
    "albums": ("album", "spotify:album:", "album", "artist", None),
    "artists": ("artist", "spotify:artist:", "name", None, None),
    "shows": ("show", "spotify:show:", "name", "publisher", None),
    "episodes": ("episode", "spotify:episode:", "name", None, "show"),
    "bannedTracks": ("banned_track", "spotify:track:", "track", "artist", "album"),
    "bannedArtists": ("banned_artist", "spotify:artist:", "name", None, None),
    "audiobooks": ("audiobook", "spotify:", "name", "author", None),
}
LIBRARY_ITEM_FIELDS = {"track", "artist", "album", "name", "publisher", "show", "uri", "author"}


def _load_object(data: bytes, name: str, what: str) -> tuple[dict[str, Any], bool]:
    """(document, strict): see `decode_json`; not strict means values may hold NaN and the like."""
    doc, strict = decode_json(data, name)
    if not isinstance(doc, dict):
        raise InputError(f"expected a JSON object ({what}), found a JSON {type(doc).__name__}", file=name)
    return doc, strict


def _wrong(obj: dict[str, Any], fields: tuple[str | None, ...], strict: bool,
           prefix: str = "") -> tuple[str, str] | None:
    """(field, what is wrong with it) for the first problem of an entry: a named field that is neither a string nor
    null (never read as "no value": a number is not a name), or, in a leniently decoded file, any field holding NaN
    and the like (`not_json`)."""
    for f in fields:
        v = obj.get(f) if f else None
        if v is not None and type(v) is not str:
            return f"{prefix}{f}", f"should be str, got {got(v, 'str')}"
    if not strict:
        for k, v in obj.items():
            problem = not_json(k) or not_json(v)
            if problem:
                return f"{prefix}{k}", f"holds {problem}"
    return None


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v != "" else None


def _uri_id(uri: Any, prefix: str) -> tuple[str | None, bool]:
    """(id, ok): a missing URI is fine (old exports); a URI of another shape is not."""
    if uri is None or uri == "":
        return None, True
    if not isinstance(uri, str) or not uri.startswith(prefix) or len(uri) <= len(prefix):
        return None, False
    return uri.rsplit(":", 1)[-1], True


def _account_rows(cols: dict[str, list], types: dict[str, pa.DataType], schema: pa.Schema) -> pa.Table:
    """Column lists (strings unless `types` says otherwise) → curated rows of `schema` from account data.

    record_no travels beside the curated columns, for quarantine and ordering only.
    """
    table = pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})
    table = table.append_column("source", pa.array(["account"] * table.num_rows, pa.string()))
    return conform(table, schema).append_column("record_no", table["record_no"])


def parse_library(data: bytes, name: str) -> Parsed:
    """Saved tracks, albums, artists, shows, episodes and bans, one row per entry (layout SAVED_TRACKS)."""
    doc, strict = _load_object(data, name, "the saved library")
    unknown = {k for k in doc if k not in LIBRARY_LISTS and k != "other"}
    cols: dict[str, list] = {c: [] for c in ("item_type", "item_id", "item_name", "track_id", "track_name",
                                             "artist_name", "album_name", "record_no")}
    quarantine: list[dict[str, Any]] = []
    read = 0
    for list_name, items in doc.items():
        if list_name not in LIBRARY_LISTS and list_name != "other":
            continue
        if not isinstance(items, list):
            read += 1
            quarantine.append({"record_no": read - 1, "reason": "wrong_type", "record": items,
                               "message": f"'{list_name}' should be a list, got {got(items, 'list')}"})
            continue
        item_type, prefix, name_f, artist_f, album_f = LIBRARY_LISTS.get(list_name, ("other", "spotify:", "name",
                                                                                   None, None))
        for item in items:
            no = read
            read += 1
            if type(item) is not dict:
                quarantine.append({"record_no": no, "reason": "not_an_object", "record": item, "list": list_name,
                                   "message": f"entry of '{list_name}' is a JSON {type(item).__name__}"})
                continue
            unknown |= {f"{list_name}.{k}" for k in item if k not in LIBRARY_ITEM_FIELDS}
            problem = _wrong(item, ("uri", name_f, artist_f, album_f), strict)
            if problem:
                quarantine.append({"record_no": no, "reason": "wrong_type", "record": item, "list": list_name,
                                   "message": f"field '{problem[0]}' of a '{list_name}' entry {problem[1]}"})
                continue
            item_id, ok = _uri_id(item.get("uri"), prefix)
            nm, artist = _str(item.get(name_f)), _str(item.get(artist_f)) if artist_f else None
            album = _str(item.get(album_f)) if album_f else None
            if not ok:
                quarantine.append({"record_no": no, "reason": "bad_uri", "record": item, "list": list_name,
                                   "message": f"field 'uri' of a '{list_name}' entry is not a {prefix}… URI"})
                continue
            if nm is None and item_id is None:
                quarantine.append({"record_no": no, "reason": "missing_field", "record": item, "list": list_name,
                                   "message": f"'{list_name}' entry has neither '{name_f}' nor 'uri'"})
                continue
            is_track = item_type == "track"
            if item_id is None and not is_track:
                item_id = surrogate_id(item_type, artist or album, nm)
            cols["item_type"].append(item_type)
            cols["item_id"].append(item_id)
            cols["item_name"].append(nm)
            cols["track_id"].append(item_id if is_track else None)
            cols["track_name"].append(nm if item_type in ("track", "banned_track") else None)
            cols["artist_name"].append(artist)
            cols["album_name"].append(album)
            cols["record_no"].append(no)
    rows = _account_rows(cols, {"record_no": pa.int32()}, SAVED_TRACKS)
    return Parsed(rows, read, quarantine, unknown, "library")


PLAYLIST_FIELDS = {"name", "lastModifiedDate", "items", "description", "numberOfFollowers", "collaborators"}
ITEM_FIELDS = {"track", "episode", "audiobook", "localTrack", "addedDate"}


def _date(v: Any) -> tuple[datetime | None, bool]:
    """(time, ok): '2024-06-28' (the usual form) or a full ISO time → naive UTC; no value → (None, True); a string
    that is no date → (None, False), for a `bad_timestamp` quarantine rather than a silent "unknown"."""
    if v is None or not v.strip():
        return None, True
    try:
        d = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        return None, False
    return (d.astimezone(UTC).replace(tzinfo=None) if d.tzinfo else d), True


# what an item may hold → the fields of it that are names or URIs (strings or null)
ITEM_PARTS = {
    "track": ("trackName", "artistName", "albumName", "trackUri"),
    "episode": ("episodeName", "showName", "episodeUri"),
    "audiobook": ("audiobookName", "name", "audiobookUri", "uri"),
    "localTrack": ("trackName", "name", "artistName", "albumName", "uri"),
}


def _playlist_problem(pl: dict[str, Any], label: str, strict: bool) -> tuple[str, str] | None:
    """(reason, message) when a playlist as a whole cannot be read; its items are then one quarantined record."""
    for f, want in (("name", "str"), ("lastModifiedDate", "str"), ("items", "a list")):
        v = pl.get(f)
        if v is not None and type(v) is not (str if want == "str" else list):
            return "wrong_type", f"{label}: field '{f}' should be {want}, got {got(v, want)}"
    if not _date(pl.get("lastModifiedDate"))[1]:
        return "bad_timestamp", f"{label}: field 'lastModifiedDate' is not a date: {pl['lastModifiedDate']!r}"
    problem = _wrong({k: v for k, v in pl.items() if k != "items"}, (), strict)
    return ("wrong_type", f"{label}: field '{problem[0]}' {problem[1]}") if problem else None


def _item_problem(it: dict[str, Any], strict: bool) -> tuple[str, str] | None:
    """(reason, "field '…' …") for the first value of an item that is not what it should be."""
    for part, names in ITEM_PARTS.items():
        v = it.get(part)
        if v is None:
            continue
        if type(v) is not dict:
            return "wrong_type", f"field '{part}' should be an object, got {got(v, 'object')}"
        problem = _wrong(v, names, True, f"{part}.")
        if problem:
            return "wrong_type", f"field '{problem[0]}' {problem[1]}"
    added = it.get("addedDate")
    if added is not None and type(added) is not str:
        return "wrong_type", f"field 'addedDate' should be str, got {got(added, 'str')}"
    if not _date(added)[1]:
        return "bad_timestamp", f"field 'addedDate' is not a date: {added!r}"
    problem = _wrong(it, (), strict)
    return ("wrong_type", f"field '{problem[0]}' {problem[1]}") if problem else None


def parse_playlists(data: bytes, name: str) -> Parsed:
    """Playlists and their items, one row per item (layout PLAYLIST_ITEMS); positions count from 0.

    An item is one record read. A playlist that cannot be read as a whole (its items not a list, its name or date
    of the wrong type) is one record read, quarantined with its items, so that nothing vanishes uncounted."""
    doc, strict = _load_object(data, name, "a 'playlists' list")
    playlists = doc.get("playlists")
    if not isinstance(playlists, list):
        raise InputError("expected a JSON object with a 'playlists' list", file=name, field="playlists")
    unknown = {k for k in doc if k != "playlists"}
    cols: dict[str, list] = {c: [] for c in ("playlist_id", "playlist_name", "position", "item_type", "item_id",
                                             "track_id", "track_name", "artist_name", "album_name", "added_at",
                                             "playlist_modified", "record_no")}
    quarantine: list[dict[str, Any]] = []
    read = 0
    seen_names: dict[str, int] = {}
    empty = 0
    for p_no, pl in enumerate(playlists):
        if type(pl) is not dict:
            read += 1
            quarantine.append({"record_no": read - 1, "reason": "not_an_object", "record": pl,
                               "message": f"playlist {p_no} is a JSON {type(pl).__name__}, not an object"})
            continue
        unknown |= {f"playlist.{k}" for k in pl if k not in PLAYLIST_FIELDS}
        label = f"playlist {p_no}" + (f" ({pl['name']!r})" if _str(pl.get("name")) else "")
        problem = _playlist_problem(pl, label, strict)
        if problem:
            read += 1
            quarantine.append({"record_no": read - 1, "reason": problem[0], "record": pl, "message": problem[1]})
            continue
        pname = _str(pl.get("name")) or f"(unnamed playlist {p_no})"
        seen_names[pname] = seen_names.get(pname, 0) + 1
        # Exports have no playlist id: the name is the identity; a second playlist of the same name gets "#2".
        key = pname if seen_names[pname] == 1 else f"{pname}#{seen_names[pname]}"
        pid = surrogate_id("playlist", None, key)
        modified = _date(pl.get("lastModifiedDate"))[0]
        items = pl.get("items") or []  # no items (missing or null) is an empty playlist
        if not items:
            empty += 1
        for pos, it in enumerate(items):
            no = read
            read += 1
            if type(it) is not dict:
                quarantine.append({"record_no": no, "reason": "not_an_object", "record": it, "playlist": pname,
                                   "message": f"item {pos} of playlist {pname!r} is not an object"})
                continue
            unknown |= {f"item.{k}" for k in it if k not in ITEM_FIELDS}
            problem = _item_problem(it, strict)
            if problem:
                quarantine.append({"record_no": no, "reason": problem[0], "record": it, "playlist": pname,
                                   "message": f"item {pos} of playlist {pname!r}: {problem[1]}"})
                continue
            item_type, iid, tname, artist, album, ok = "track", None, None, None, None, True
            if isinstance(it.get("track"), dict):
                t = it["track"]
                iid, ok = _uri_id(t.get("trackUri"), "spotify:track:")
                tname, artist, album = _str(t.get("trackName")), _str(t.get("artistName")), _str(t.get("albumName"))
            elif isinstance(it.get("episode"), dict):
                e = it["episode"]
                item_type = "episode"
                iid, ok = _uri_id(e.get("episodeUri"), "spotify:episode:")
                tname, album = _str(e.get("episodeName")), _str(e.get("showName"))
                iid = iid or (surrogate_id("episode", album, tname) if tname else None)
            elif isinstance(it.get("audiobook"), dict):
                b = it["audiobook"]
                item_type = "audiobook"
                iid, ok = _uri_id(b.get("audiobookUri") or b.get("uri"), "spotify:")
                tname = _str(b.get("audiobookName") or b.get("name"))
                iid = iid or (surrogate_id("audiobook", None, tname) if tname else None)
            elif isinstance(it.get("localTrack"), dict):
                loc = it["localTrack"]
                item_type = "local"
                tname, artist, album = (_str(loc.get("trackName") or loc.get("name")), _str(loc.get("artistName")),
                                        _str(loc.get("albumName")))
                if tname is None and isinstance(loc.get("uri"), str):
                    tname = loc["uri"]
            if not ok:
                quarantine.append({"record_no": no, "reason": "bad_uri", "record": it, "playlist": pname,
                                   "message": f"item {pos} of playlist {pname!r} has a malformed URI"})
                continue
            if iid is None and tname is None:
                quarantine.append({"record_no": no, "reason": "missing_field", "record": it, "playlist": pname,
                                   "message": f"item {pos} of playlist {pname!r} names no track, episode or book"})
                continue
            cols["playlist_id"].append(pid)
            cols["playlist_name"].append(pname)
            cols["position"].append(pos)
            cols["item_type"].append(item_type)
            cols["item_id"].append(iid)
            cols["track_id"].append(iid if item_type == "track" else None)
            cols["track_name"].append(tname)
            cols["artist_name"].append(artist)
            cols["album_name"].append(album)
            cols["added_at"].append(_date(it.get("addedDate"))[0])
            cols["playlist_modified"].append(modified)
            cols["record_no"].append(no)
    types = {"position": pa.int32(), "record_no": pa.int32(), "added_at": TS, "playlist_modified": TS}
    rows = _account_rows(cols, types, PLAYLIST_ITEMS)
    return Parsed(rows, read, quarantine, unknown, "playlists",
                  details={"playlists": len(playlists), "empty_playlists": empty})


# --- curated merges -------------------------------------------------------------------------------------------
