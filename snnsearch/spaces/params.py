"""One searched hyperparameter (``ParamSpec``), Optuna's define-by-run function over a list of
them (``DefineByRun``), and the schema error (``SpaceError``): the pieces
:mod:`snnsearch.spaces.space` builds a search space from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


class SpaceError(ValueError):
    """A search-space file that does not follow the schema (message: ``file: key: problem``)."""


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One searched hyperparameter.

    Args:
        name: config key passed to the trainable.
        kind: "float", "int" or "categorical".
        low: lower bound (numeric kinds).
        high: upper bound (numeric kinds).
        choices: the options (categorical).
        log: sample on a log scale.
        step: quantisation step (numeric kinds).
        when: ``{other_param: (allowed values...)}``; the parameter exists only if all match.
    """

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    log: bool = False
    step: float | None = None
    when: Mapping[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether the parameter exists given the values sampled or fixed so far."""
        return all(name in values and values[name] in ok for name, ok in self.when.items())

    def suggest(self, trial: optuna.Trial) -> Any:
        """Asks Optuna for a value through the matching ``suggest_*`` call."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            step = int(self.step) if self.step else 1
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(
            self.name, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of this parameter (for logging the space next to the results)."""
        out: dict[str, Any] = {
            self.kind: list(self.choices) if self.kind == "categorical" else [self.low, self.high]
        }
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        if self.when:
            out["when"] = {k: list(v) for k, v in self.when.items()}
        return out


@dataclasses.dataclass(frozen=True)
class DefineByRun:
    """Optuna define-by-run function over a space; a plain dataclass so Ray can pickle it.

    Args:
        params: the parameters in file order (conditions only look backwards).
        fixed: the fixed values, visible to ``when`` conditions.
    """

    params: tuple[ParamSpec, ...]
    fixed: Mapping[str, Any]

    def __call__(self, trial: optuna.Trial) -> None:
        values: dict[str, Any] = dict(self.fixed)
        for param in self.params:
            if param.active(values):
                values[param.name] = param.suggest(trial)
