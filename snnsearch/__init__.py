"""snnsearch: hyperparameter sweeps of spiking neural networks on Ray Tune, Optuna and MLflow.

Kept import-light (no torch / ray / mlflow here) so ``sweeps/*.py --help`` starts instantly;
import the subpackages you need: ``snnsearch.classify.models``, ``snnsearch.sweep.tasks``,
``snnsearch.tuning``, ``snnsearch.reporting``.
"""

from snnsearch import constants
from snnsearch.registry import Registry

__version__ = "0.1.0"
__all__ = ["Registry", "constants", "__version__"]
