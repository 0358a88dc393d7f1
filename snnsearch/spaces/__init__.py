"""What a sweep is, as data: the YAML search space (``space``, ``params``, ``checks``), fixed grids
with expected numbers (``grid``), the safe YAML loader, and the sweep directory on local or remote
storage (``storage``). Read by the assembly, tracking and reporting alike.

May import: snnsearch.registry, snnsearch.constants.
"""
