"""``python -m snnsearch.report <sweep dir>``: the sweep's best trials, its plots and its report.

Reads ``trials.parquet`` and ``sweep.json`` (for the objective) only, never Ray's pickled
experiment state: a sweep whose driver died before writing the table is finished with
``--resume``, whose signatures are checked first. Prints the best trials, writes
``plots/`` (the report's figures as PNGs) and the self-contained ``report.html`` plus ``report.md`` into the sweep directory
(local paths; for s3:// sweeps copy the directory first). A thin CLI: the work is in
:mod:`snnsearch.reporting`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m snnsearch.report", description=__doc__)
    parser.add_argument("sweep_dir", help="the sweep directory (<storage>/<name>)")
    parser.add_argument("--top", type=int, default=10, help="how many trials to print")
    parser.add_argument("--metric", help="objective (default: the sweep's, from sweep.json)")
    parser.add_argument("--mode", choices=("min", "max"), help="direction of --metric")
    parser.add_argument("--no-plots", action="store_true", help="print only (no plots, no report)")
    parser.add_argument("--compare", action="store_true",
                        help="grid sweeps (search_spaces/report/*.yaml): the report's numbers "
                             "beside ours per cell -> compare.md and the MLflow parent run")
    parser.add_argument("--space", help="with --compare: the grid space (default: sweep.json's)")
    args = parser.parse_args(argv)

    import pandas as pd

    from snnsearch.reporting.plots import varied_params
    from snnsearch.reporting.results import load_table
    from snnsearch.reporting.sweep_report import report_sweep_dir
    from snnsearch.storage import signing

    # Absolute: pyarrow reads the table through a filesystem URI, which a relative path is not.
    sweep_dir = Path(args.sweep_dir).expanduser().resolve()
    if not sweep_dir.is_dir():
        print(f"error: no such sweep directory: {sweep_dir} (sweeps land in <--storage>/<name>, "
              "default ~/ray_results/<name>)", file=sys.stderr)
        return 2
    try:  # a tampered sweep.json (its signature does not match) is refused
        saved = signing.read_settings(str(sweep_dir), required=False) or {}
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    metric, mode = args.metric or saved.get("metric"), args.mode or saved.get("mode")
    if not metric or not mode:
        print(f"error: {sweep_dir} has no sweep.json; pass --metric and --mode", file=sys.stderr)
        return 2
    try:
        table = load_table(str(sweep_dir))
    except (FileNotFoundError, ValueError) as err:  # missing, unreadable or tampered
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.compare:
        from snnsearch.reporting.compare import compare_main

        return compare_main(table, str(sweep_dir), space_path=args.space)
    best = f"best_{metric}"
    if best not in table:
        print(f"error: the table has no {best}; columns: {', '.join(table.columns)}",
              file=sys.stderr)
        return 2
    table = table.sort_values(best, ascending=mode == "min", na_position="last")
    columns = ["trial_id", "status", "epochs_run", best, "last/energy_mj", "time_total_s"]
    columns += [f"config/{p}" for p in varied_params(table)]
    shown = table[[c for c in columns if c in table]].head(args.top)
    counts = table["status"].value_counts().to_dict()
    print(f"{sweep_dir}: {len(table)} trials {counts}; top {len(shown)} by {metric} ({mode})")
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(shown.rename(columns=lambda c: c.removeprefix("config/")).to_string(index=False))
    if not args.no_plots:
        report = report_sweep_dir(str(sweep_dir), {**saved, "metric": metric, "mode": mode},
                                  table, top=min(args.top, 5))
        print(f"report: {report.html_path} (summary {report.md_path}, figures in "
              f"{sweep_dir / 'plots'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
