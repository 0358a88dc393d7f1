"""The sweep engine: YAML spaces → Optuna define-by-run → Ray Tune (ASHA/FIFO) → nested MLflow.

Import cost matters for ``sweeps/*.py --help``: only the space/registry modules are imported
here; Ray, Optuna and MLflow load when a sweep is built.
"""

from snnsearch.tuning.schedulers import SCHEDULERS, SchedulerSettings, build_scheduler
from snnsearch.tuning.searchers import SAMPLERS, build_searcher
from snnsearch.tuning.settings import SweepSettings, resolve_settings
from snnsearch.tuning.space import ParamSpec, SearchSpace, SpaceError, load_space, parse_space

__all__ = [
    "SAMPLERS",
    "SCHEDULERS",
    "ParamSpec",
    "SchedulerSettings",
    "SearchSpace",
    "SpaceError",
    "SweepSettings",
    "build_scheduler",
    "build_searcher",
    "load_space",
    "parse_space",
    "resolve_settings",
]
