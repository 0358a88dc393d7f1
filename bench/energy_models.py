"""Prints the worked energy examples of docs/energy.md (MNIST CSNN, depth net) under every model.

Usage: PYTHONPATH=$PWD OMP_NUM_THREADS=1 python bench/energy_models.py [--sram-kb 32]
"""

from __future__ import annotations

import argparse
import time

from snnsearch.reporting.energy_examples import csnn_example, depth_example, markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sram-kb", type=float, default=32.0)
    args = parser.parse_args()
    for build in (csnn_example, depth_example):
        start = time.perf_counter()
        example = build()
        print(markdown(example, sram_kb=args.sram_kb))
        print(f"\n(counted in {time.perf_counter() - start:.1f} s)\n")


if __name__ == "__main__":
    main()
