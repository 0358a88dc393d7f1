"""Search policies: Optuna samplers for Ray Tune (``searchers``, ``pruned_optuna``), trial
schedulers (``schedulers``: ASHA, FIFO, MO-ASHA in ``moasha``; their resumable state in
``scheduler_state``), the silent-network stopper (``silence``), the compute budget in seconds
(``budget``), Pareto maths (``pareto``) and hard
constraints (``constraints``). Each sampler and scheduler is one registry entry.

May import: snnsearch.storage, snnsearch.registry, snnsearch.constants.
"""
