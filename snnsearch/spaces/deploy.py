"""``fixed: {deploy: nir}``: a space whose every model exports to NIR, checked before Ray starts.

NIR (the Neuromorphic Intermediate Representation) holds conv/linear layers, average pooling,
flatten and IF/LIF neurons with a hard reset. A space with ``deploy: nir`` may only offer choices
that stay inside that set, so every point on its front can leave the sweep
(``python -m snnsearch.export``, docs/export.md). The rules are data here because spaces import
no task; ``snnsearch.export.graph`` refuses the same things layer by layer at export time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from snnsearch.spaces.space import SearchSpace

DEPLOY_KEY = "deploy"
DEPLOY_TARGETS = ("none", "nir")

# key → (values NIR can represent, default when the space leaves the key out, why, the fix).
# ANN twins (fc_ann, csnn_ann) stay allowed: they are the front's baselines, never exported.
NIR_RULES: dict[str, tuple[frozenset[Any], Any, str]] = {
    "model": (frozenset({"fc", "csnn", "fc_ann", "csnn_ann"}), "csnn",
              "spikformer's spiking self-attention has no NIR node"),
    "neuron": (frozenset({"if", "lif", "plif"}), "lif",
               "I-LIF's integer spikes are not NIR's threshold-and-reset spike"),
    "pool": (frozenset({"avg"}), "max", "NIR has no max pooling"),
}


def _possible(key: str, space: SearchSpace) -> set[Any] | None:
    """Values ``key`` can take: fixed, a categorical's choices, or None (numeric range)."""
    if key in space.fixed:
        return {space.fixed[key]}
    for param in space.params:
        if param.name == key:
            return set(param.choices) if param.kind == "categorical" else None
    return None


def check_deploy(space: SearchSpace) -> None:
    """Raises a one-line ValueError if ``deploy`` is unknown or a choice cannot be exported.

    Args:
        space: the space with the run's fixed values applied.
    """
    target = space.fixed.get(DEPLOY_KEY, "none")
    if any(p.name == DEPLOY_KEY for p in space.params):
        raise ValueError(f"{space.source}: space.{DEPLOY_KEY}: a deploy target is a property "
                         f"of the sweep; set it under fixed: ({', '.join(DEPLOY_TARGETS)})")
    if target not in DEPLOY_TARGETS:
        raise ValueError(f"{space.source}: fixed.{DEPLOY_KEY}: {target!r} is no deploy target; "
                         f"choose one of {', '.join(DEPLOY_TARGETS)}")
    if target != "nir":
        return
    models = _possible("model", space) or {NIR_RULES["model"][1]}
    for key, (allowed, default, why) in NIR_RULES.items():
        if key == "pool" and not models & {"csnn", "csnn_ann"}:
            continue  # pooling exists in the CSNN family only
        values = _possible(key, space)
        if values is None and key not in space.fixed and not _searched(key, space):
            values = {default}
        bad = sorted(str(v) for v in (values or set()) - allowed)
        if bad:
            where = "fixed" if key in space.fixed else ("space" if _searched(key, space)
                                                        else "default")
            raise ValueError(
                f"{space.source}: {where}.{key}: {', '.join(bad)} cannot be exported with "
                f"deploy: nir ({why}); allow only {', '.join(sorted(map(str, allowed)))}"
                + (f" (set fixed: {{{key}: avg}})" if key == "pool" else ""))


def _searched(key: str, space: SearchSpace) -> bool:
    return any(p.name == key for p in space.params)


def deploy_target(fixed: Mapping[str, Any]) -> str:
    return str(fixed.get(DEPLOY_KEY, "none"))
