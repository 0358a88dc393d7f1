"""The sweep's assembly: CLI and flags (``cli``, ``settings``), the checks before Ray starts
(``preflight``), the registered tasks (``tasks``), the one place that builds Ray Tune objects
(``tuner``), a sweep's life from start to summary (``run``), storage lock, state signing,
interrupts, repeats and warm starts.

May import: snnsearch.export, snnsearch.storage, snnsearch.reporting, snnsearch.tracking, snnsearch.search, snnsearch.spaces,
snnsearch.classify, snnsearch.depth, snnsearch.snn, snnsearch.training, snnsearch.energy,
snnsearch.registry, snnsearch.constants (everything but snnsearch.testing).
"""
