"""snnsearch: hyperparameter sweeps of spiking neural networks on Ray Tune, Optuna and MLflow.

Kept import-light (no torch / ray / mlflow here) so ``sweeps/*.py --help`` starts instantly;
import the subpackages you need: the tasks (``snnsearch.classify``, ``snnsearch.depth``), the
engine (``snnsearch.sweep``, ``snnsearch.search``, ``snnsearch.tracking``, ``snnsearch.reporting``);
the map is docs/architecture.md.
"""

from snnsearch import constants
from snnsearch.registry import Registry

__version__ = "0.1.0"
__all__ = ["Registry", "constants", "__version__"]
