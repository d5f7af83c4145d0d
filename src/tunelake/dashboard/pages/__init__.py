"""The dashboard's pages, in navigation order. Each page module offers `layout()`, `CHARTS` (one callback each,
filled from the filter store) and `CLICKS` (callbacks that turn a click into a filter)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunelake.dashboard.pages import (
    compare,
    overview,
    patterns,
    quality,
    recommendations,
    segments,
    taste,
    wrapped,
)
from tunelake.dashboard.pages.common import Chart


@dataclass(frozen=True)
class Page:
    key: str
    name: str
    path: str
    layout: Callable[[], Any]
    charts: tuple[Chart, ...]
    clicks: tuple[Callable[..., None], ...] = field(default_factory=tuple)


PAGES: tuple[Page, ...] = tuple(
    Page(m.KEY, m.NAME, m.PATH, m.layout, tuple(m.CHARTS), tuple(getattr(m, "CLICKS", ())))
    for m in (overview, patterns, taste, segments, recommendations, wrapped, compare, quality)
)
