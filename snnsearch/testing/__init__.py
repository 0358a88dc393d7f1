"""Fakes shipped with the package for tests (after optuna/testing/): small, real, fast."""
