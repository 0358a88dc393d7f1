"""Helpers shared by the report CLI: which config keys a sweep varied.

The plots themselves are the report's figures (:mod:`snnsearch.reporting.figures`,
:mod:`snnsearch.reporting.front`), written as ``plots/<name>.png`` beside ``report.html``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def varied_params(table: pd.DataFrame) -> list[str]:
    """Config keys that take more than one value across trials (the searched ones, in effect)."""
    cols = [c for c in table.columns if c.startswith("config/")]
    return [c.removeprefix("config/") for c in cols if table[c].dropna().astype(str).nunique() > 1]
