"""``python -m snnsearch.export <sweep dir> [--trial ID | --front | --top-k K] --format nir``.

Writes ``<trial>.nir`` + ``<trial>.json`` per model (default into ``<sweep dir>/export``), checks
each file against the trained network on the test set, and with ``--mlflow-uri`` logs the models
to the trials' MLflow runs (``--register NAME`` registers them). Bad input is one ``error:`` line
and exit 2; a model NIR cannot hold is one ``refused`` line naming the layer and the knob.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

FORMATS = ("nir",)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m snnsearch.export", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("sweep_dir", help="a sweep directory (<storage>/<name>)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--trial", help="export this trial id")
    which.add_argument("--front", action="store_true",
                       help="export the accuracy-energy front of the report (default)")
    which.add_argument("--top-k", type=int, help="export the k best completed spiking trials")
    p.add_argument("--format", choices=FORMATS, default="nir", help="export format")
    p.add_argument("--out", help="output folder (default <sweep dir>/export)")
    p.add_argument("--data-dir", help="dataset root (default: the trial's data_dir)")
    p.add_argument("--test-images", type=int,
                   help="run the check on the first N test images (default: the whole test set)")
    p.add_argument("--no-second-framework", action="store_true",
                   help="skip the snnTorch check (it runs one image at a time)")
    p.add_argument("--mlflow-uri", help="log the exported models to this tracking server")
    p.add_argument("--register", metavar="NAME", help="register the logged models under NAME")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.top_k is not None and args.top_k < 1:
        print(f"error: --top-k must be >= 1 (got {args.top_k})", file=sys.stderr)
        return 2
    if args.register and not args.mlflow_uri:
        print("error: --register needs --mlflow-uri (where to register)", file=sys.stderr)
        return 2
    from snnsearch.export.sweep_export import export_sweep, summary_lines

    try:
        outcome = export_sweep(
            args.sweep_dir, trial=args.trial, front=args.front or not (args.trial or args.top_k),
            top_k=args.top_k, out_dir=args.out, data_dir=args.data_dir,
            test_images=args.test_images, second_framework=not args.no_second_framework)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(outcome)))
    if args.mlflow_uri and outcome.exported:
        from snnsearch.export.tracking import log_sweep_models

        for trial, uri in log_sweep_models(args.sweep_dir, outcome, tracking_uri=args.mlflow_uri,
                                           register=args.register).items():
            print(f"  {trial}: MLflow model {uri}")
    return 2 if args.trial and outcome.refused else 0


if __name__ == "__main__":
    sys.exit(main())
