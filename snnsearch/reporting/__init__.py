"""Reporting: sweep results as tables (Parquet), figures, the HTML sweep report, Pareto and
repeat reports, the comparison with a source report (``compare``) and the worked energy examples;
``python -m snnsearch.report`` is the CLI.

May import: snnsearch.storage, snnsearch.tracking, snnsearch.spaces, snnsearch.search, snnsearch.classify,
snnsearch.depth, snnsearch.snn, snnsearch.energy, snnsearch.registry, snnsearch.constants.
"""

from snnsearch.reporting.results import (
    TABLE_FILE,
    load_table,
    rows_from_results,
    write_table,
)

__all__ = ["TABLE_FILE", "load_table", "rows_from_results", "write_table"]
