"""What a sweep is, as data: the YAML search space (``space``, ``params``, ``checks``), fixed grids
with expected numbers (``grid``) and the safe YAML loader. Read by the assembly, tracking and
reporting alike; the sweep directory itself is ``snnsearch.storage``.

May import: snnsearch.storage, snnsearch.registry, snnsearch.constants.
"""
