"""Fakes shipped with the package for tests and benchmarks (after optuna/testing/): small, real,
fast. In the package, not in tests/, so Ray workers on every node can import them by name.

May import: anything. Nothing in the package imports it.
"""
