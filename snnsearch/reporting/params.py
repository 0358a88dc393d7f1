"""What the report knows about each searched hyperparameter: kind, range, log scale, choices.

Taken from the sweep's search space (``space.yaml`` in the sweep directory, written when the sweep
starts, or the space file named in ``sweep.json``) so that plots and importances follow the
declared scales: a categorical ``depth: [18, 34]`` gets a categorical axis, ``lr`` with
``log: true`` a log axis. For an old sweep without either, the kinds are inferred from the trial
table (strings are categorical; a positive numeric range spanning more than 20× is drawn on a log
axis).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from snnsearch.storage import sweepdir as _storage

if TYPE_CHECKING:
    import pandas as pd

SPACE_FILE = "space.yaml"
INACTIVE = "n/a"  # label of a conditional parameter where its condition is not met


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    """One searched hyperparameter as the report draws it.

    Args:
        name: config key (table column ``config/<name>``).
        kind: "categorical", "int" or "float".
        low: lower bound (numeric kinds).
        high: upper bound (numeric kinds).
        log: log-scale axis.
        choices: the categories in declared order (categorical).
        conditional: exists only for some values of other parameters (``when`` in the space).
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    conditional: bool = False

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def column(self) -> str:
        return f"config/{self.name}"


def from_space(space: Any) -> list[ParamInfo]:
    """ParamInfos of a :class:`snnsearch.spaces.space.SearchSpace`, in file order."""
    return [
        ParamInfo(name=p.name, kind=p.kind, low=p.low, high=p.high, log=p.log,
                  choices=tuple(p.choices), conditional=bool(p.when))
        for p in space.params
    ]


def load_params(sweep_dir: str, table: pd.DataFrame) -> list[ParamInfo]:
    """The searched parameters of a sweep that varied in its trials.

    Reads ``space.yaml`` of the sweep directory, else the space file named in ``sweep.json``,
    else infers them from the table; parameters fixed on the command line (one value in every
    trial) are left out.
    """
    space = _space_of(sweep_dir)
    # A grid space (search_spaces/report/*.yaml) has cells instead of searched parameters.
    infos = from_space(space) if space is not None and space.params else infer(table)
    return [p for p in infos if p.column in table and _varied(table[p.column])]


def infer(table: pd.DataFrame) -> list[ParamInfo]:
    """ParamInfos guessed from the ``config/*`` columns that take more than one value."""
    import pandas as pd

    out = []
    for col in [c for c in table.columns if c.startswith("config/")]:
        series = table[col].dropna()
        if not _varied(table[col]):
            continue
        name = col.removeprefix("config/")
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if not numeric:
            out.append(ParamInfo(name=name, kind="categorical",
                                 choices=tuple(sorted(series.astype(str).unique()))))
            continue
        low, high = float(series.min()), float(series.max())
        is_int = bool((series == series.round()).all())
        out.append(ParamInfo(name=name, kind="int" if is_int else "float", low=low, high=high,
                             log=low > 0 and high / low > 20,
                             conditional=bool(table[col].isna().any())))
    return out


def _space_of(sweep_dir: str) -> Any:
    import yaml

    from snnsearch.spaces.space import SpaceError, load_space, parse_space

    text = _storage.read_text(_storage.join(sweep_dir, SPACE_FILE))
    if text:
        return parse_space(yaml.safe_load(text), source=SPACE_FILE)
    saved = json.loads(_storage.read_text(_storage.join(sweep_dir, "sweep.json")) or "{}")
    try:
        return load_space(saved["space_path"]) if saved.get("space_path") else None
    except SpaceError:
        return None


def _varied(series: pd.Series) -> bool:
    return series.dropna().astype(str).nunique() > 1


def label(value: Any) -> str:
    """A category's label: ``32`` for 32 and for 32.0 (a column with gaps is stored as floats)."""
    if _missing(value):
        return INACTIVE
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def shown(param: ParamInfo, value: Any) -> Any:
    """A table cell: the number for a numeric parameter (formatted by the page), else its label."""
    if param.categorical or _missing(value) or isinstance(value, str):
        return label(value)
    return float(value) if param.kind == "float" else int(value)


def level_labels(param: ParamInfo, values: Sequence[Any]) -> list[str]:
    """Category labels in declared order (every declared category that occurs), then any
    unexpected values, then ``n/a`` if the parameter was inactive in some trials."""
    seen = {label(v) for v in values if not _missing(v)}
    labels = [label(c) for c in param.choices if label(c) in seen]
    labels += sorted(seen - set(labels))
    if any(_missing(v) for v in values):
        labels.append(INACTIVE)
    return labels


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
