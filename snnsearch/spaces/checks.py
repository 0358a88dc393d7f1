"""Space checks that need the fixed values a sweep really runs with (after ``--smoke`` and CLI
overrides): parameters that can never be sampled, parameters that mean nothing for any neuron the
space allows, and what differs between a stored space and the one given on ``--resume``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from snnsearch.spaces.space import SearchSpace

# Gate tables (declared by each task, ``register_task(reads=...)``): ``{gate key: {value: keys
# that value reads}}``, e.g. ``{"neuron": {"ilif": {"tau", "D", ...}, "if": {...}}}``. A key read
# by some values of a gate and not others only means something on a branch where the gate can
# take one of those values; anywhere else it logs a value that changed nothing and lets the
# sampler chase noise along it.
Gates = Mapping[str, Mapping[Any, Iterable[str]]]


def check_space(space: SearchSpace, gates: Gates | None = None, *,
                defaults: frozenset[str] = frozenset()) -> None:
    """Raises a one-line ValueError for a parameter whose ``when`` can never hold, or one that
    only matters for values its gate key can never take on the parameter's branch.

    Args:
        space: the space with the run's fixed values applied (``space.with_fixed(...)``).
        gates: the task's gate tables (see ``Gates``); None: nothing is gated.
        defaults: fixed keys the run supplies for every family (``--smoke``'s small widths),
            not the user: a value no model of this run reads is no mistake there.
    """
    values: dict[str, set[Any] | None] = {k: {v} for k, v in space.fixed.items()}
    reachable: set[str] = set(space.fixed)
    branches: dict[str, dict[str, set[Any]]] = {}
    for param in space.params:
        branch: dict[str, set[Any]] = {}
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
            # A branch inherits the conditions of the parameters it is conditioned on.
            for key, vals in (*branches.get(other, {}).items(), (other, set(allowed))):
                branch[key] = branch[key] & vals if key in branch else set(vals)
        branches[param.name] = branch
        reachable.add(param.name)
        values[param.name] = set(param.choices) if param.kind == "categorical" else None
    for gate, table in (gates or {}).items():
        if gate in values:
            _check_gate(space, gate, {v: frozenset(keys) for v, keys in table.items()}, values,
                        branches, defaults)


def _check_gate(space: SearchSpace, gate: str, table: Mapping[Any, frozenset[str]],
                values: Mapping[str, set[Any] | None],
                branches: Mapping[str, Mapping[str, set[Any]]],
                defaults: frozenset[str] = frozenset()) -> None:
    """One gate: every key some of its values read must be reachable with one of them."""
    can_be = values[gate]
    for name in values:
        needed = {v for v, keys in table.items() if name in keys}
        if name in defaults and name in space.fixed:
            continue  # the run's own default for every family (check_space)
        if not needed or name == gate or len(needed) == len(table):
            continue  # not gated: read by no value (not this gate's key) or by every value
        branch = branches.get(name, {}).get(gate)
        possible = can_be if branch is None else (branch if can_be is None else can_be & branch)
        if possible is None:
            continue  # a numeric gate: nothing to judge
        unknown = {v for v in possible if v not in table}  # refused by the task's own checks
        if possible & needed or unknown:
            continue
        where = "fixed" if name in space.fixed else "space"
        readers = sorted(map(str, needed))
        if branch is not None:
            why = f"its when allows {gate} {_show(possible, fixed=False)} only"
            fix = f"put it under when: {{{gate}: {readers[0]}}}"
        else:
            why, fix = f"{gate} is {_show(possible)}", f"let {gate} be one of {readers}"
        raise ValueError(f"{space.source}: {where}.{name}: {name} is only read by {gate} in "
                         f"{readers}, but {why}; remove {name} or {fix}")


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


def _show(values: set[Any], fixed: bool = True) -> str:
    items = sorted(map(str, values))
    if len(items) == 1:
        return f"fixed to {items[0]}" if fixed else items[0]
    return f"one of {items}"
