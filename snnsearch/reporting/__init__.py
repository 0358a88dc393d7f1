"""Sweep results as tables (Parquet) and plots; ``python -m snnsearch.report`` is the CLI."""

from snnsearch.reporting.results import (
    TABLE_FILE,
    load_table,
    rows_from_results,
    table_from_sweep_dir,
    write_table,
)

__all__ = ["TABLE_FILE", "load_table", "rows_from_results", "table_from_sweep_dir", "write_table"]
