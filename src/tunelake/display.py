"""How a value reads in a table, the same on the dashboard and in the report."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def format_cell(v: Any, fmt: str | None = None) -> str:
    """Empty for missing values, ✓ for true, the column's format when given, thousands separators otherwise."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "✓" if v else ""
    if fmt:
        try:
            return format(v, fmt)
        except (TypeError, ValueError):
            return str(v)
    if isinstance(v, float):
        return f"{v:,.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
