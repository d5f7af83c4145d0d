"""The dashboard's pages, in navigation order. Each page module offers `layout()`, `CHARTS` (one callback each,
filled from the filter store) and `CLICKS` (callbacks of their own, registered with `(app, warehouse, viewer_of)`:
clicks that turn into a filter, pickers that are not the filter bar). `layout(viewer)` gets the request's viewer
(None: everyone), so a page can leave out what a listener may not see."""

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
    layout: Callable[[Any], Any]
    charts: tuple[Chart, ...]
    clicks: tuple[Callable[..., None], ...] = field(default_factory=tuple)
    admin_only: bool = False  # shows every listener's data (segments, quality): admins only


def visible_pages(viewer: Any) -> tuple[Page, ...]:
    """The pages `viewer` may open (None or an admin: all of them)."""
    admin = viewer is None or viewer.is_admin
    return tuple(p for p in PAGES if admin or not p.admin_only)


PAGES: tuple[Page, ...] = tuple(
    Page(m.KEY, m.NAME, m.PATH, m.layout, tuple(m.CHARTS), tuple(getattr(m, "CLICKS", ())),
         getattr(m, "ADMIN_ONLY", False))
    for m in (overview, patterns, taste, segments, recommendations, wrapped, compare, quality)
)
