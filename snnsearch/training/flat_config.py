"""Flat trial configs (Ray Tune ``param_space`` / YAML keys) → frozen dataclasses.

``config_from_dict`` rejects unknown keys and coerces types, so a typo in a search space fails the
trial at once with one line naming the key, instead of silently training the default. Shared by
every task's config (``snnsearch.classify.config``, ``snnsearch.depth.config``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

C = TypeVar("C")


def config_from_dict(cls: type[C], values: Mapping[str, Any], *, label: str = "") -> C:
    """Builds the frozen dataclass ``cls`` from a flat dict, rejecting unknown keys.

    Args:
        cls: a dataclass whose fields are flat scalars (int, float, str, bool or Optional of those).
        values: the trial config; missing keys take the dataclass defaults.
        label: names the config in errors ("depth " → "unknown depth config key ...").
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown {label}config key {key!r}{hint}; valid keys: {', '.join(fields)}"
            )
        kwargs[key] = _coerce(f"{label}config key {key!r}", value, hints[key])
    return cls(**kwargs)


def _coerce(what: str, value: Any, hint: Any) -> Any:
    """Accepts numpy scalars, integral floats and "true"/"false" strings from search spaces."""
    if value is None:
        return None
    target = hint
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        target = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        if target is bool and isinstance(value, str):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            return value.lower() in ("1", "true", "yes")
        if target is int and float(value) != int(float(value)):
            raise ValueError
        if target is int:
            return int(float(value))
        return target(value) if target in (float, str, bool) else value
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be {target.__name__} (got {value!r})") from None
