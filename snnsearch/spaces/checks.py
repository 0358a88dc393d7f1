"""Space checks that need the fixed values a sweep really runs with (after ``--smoke`` and CLI
overrides): parameters that can never be sampled, parameters that mean nothing for any neuron the
space allows, and what differs between a stored space and the one given on ``--resume``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snnsearch.spaces.space import SearchSpace

# Parameter → (key, values for which it means something). ``D`` (I-LIF spike-count levels) is
# read only by I-LIF neurons; a space where the neuron can never be ``ilif`` would log a D that
# changed nothing and let the sampler chase noise along it.
MEANINGFUL_ONLY_FOR: dict[str, tuple[str, frozenset[Any]]] = {
    "D": ("neuron", frozenset({"ilif"})),
}


def check_space(space: SearchSpace) -> None:
    """Raises a one-line ValueError for a parameter whose ``when`` can never hold, or one that
    only matters for values its gate key can never take.

    Args:
        space: the space with the run's fixed values applied (``space.with_fixed(...)``).
    """
    values: dict[str, set[Any] | None] = {k: {v} for k, v in space.fixed.items()}
    reachable: set[str] = set(space.fixed)
    for param in space.params:
        for other, allowed in param.when.items():
            if other not in reachable:
                raise ValueError(f"{space.source}: space.{param.name}: its condition on {other} "
                                 f"can never hold ({other} is never sampled); remove it or fix "
                                 f"{other}'s when")
            can_be = values.get(other)
            if can_be is not None and not (can_be & set(allowed)):
                raise ValueError(
                    f"{space.source}: space.{param.name}: when {other} in {list(allowed)} can "
                    f"never hold ({other} is {_show(can_be)}); remove {param.name} or change "
                    f"{other}"
                )
        reachable.add(param.name)
        values[param.name] = set(param.choices) if param.kind == "categorical" else None
    for name, (key, needed) in MEANINGFUL_ONLY_FOR.items():
        if name not in values or key not in values:
            continue
        can_be = values[key]
        if can_be is not None and not (can_be & needed):
            where = "fixed" if name in space.fixed else "space"
            raise ValueError(
                f"{space.source}: {where}.{name}: {name} only affects {key} in "
                f"{sorted(needed)}, but {key} is {_show(can_be)}; remove {name} or allow "
                f"{key}: {sorted(needed)[0]}"
            )


def space_diff(stored: Mapping[str, Any], given: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two space dicts (``SearchSpace.to_dict``)."""
    out = []
    for key in sorted(set(stored) | set(given), key=str):
        a, b = stored.get(key, _MISSING), given.get(key, _MISSING)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += space_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


_MISSING = object()


def _show(values: set[Any]) -> str:
    items = sorted(map(str, values))
    return f"fixed to {items[0]}" if len(items) == 1 else f"one of {items}"
