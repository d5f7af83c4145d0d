"""How items are named and identified across sources: the comparable form of a name (case, accents, credits and
punctuation removed), the key of an (artist, track) pair, and the stable surrogate id of an item known only by its
names (`x` + 21 hex digits), so the same unresolved song is one item everywhere and can be upgraded later."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable

_FEAT = re.compile(
    r"\s*[\(\[]\s*(?:feat\.?|ft\.?|featuring|with)\s[^\)\]]*[\)\]]"  # "(feat. X)", "[with Y]"
    r"|\s+(?:feat\.?|ft\.?|featuring)\s.*$",  # trailing "feat. X"
    re.IGNORECASE,
)
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


@functools.lru_cache(maxsize=1 << 18)
def normalize(name: str | None) -> str:
    """The comparable form of a name: what differs between exports (case, accents, credits, punctuation) removed."""
    if not name:
        return ""
    s = unicodedata.normalize("NFKD", name)
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    s = s.casefold().replace("&", " and ")
    stripped = _FEAT.sub("", s)
    s = _PUNCT.sub(" ", stripped if stripped.strip() else s).strip()
    return s or name.strip().casefold()


def name_key(first: str | None, second: str | None) -> str:
    """Key of an (artist, track) — or (show, episode), (audiobook, chapter) — pair."""
    return normalize(first) + "\x1f" + normalize(second)


def surrogate_id(kind: str, first: str | None, second: str | None) -> str:
    """Stable 22-character id for an item known only by its names (same form as sources.catalog.surrogate)."""
    return "x" + hashlib.md5(f"{kind}:{name_key(first, second)}".encode()).hexdigest()[:21]


_SURROGATE = re.compile(r"x[0-9a-f]{21}")


def is_surrogate(track_id: str | None) -> bool:
    return bool(track_id) and len(track_id) == 22 and _SURROGATE.fullmatch(track_id) is not None


def keys_of(first: Iterable[str | None], second: Iterable[str | None]) -> list[str]:
    """name_key for many rows, normalising each distinct pair once."""
    cache: dict[tuple[str | None, str | None], str] = {}
    out = []
    for a, b in zip(first, second, strict=True):
        k = cache.get((a, b))
        if k is None:
            k = cache[(a, b)] = name_key(a, b)
        out.append(k)
    return out
