"""Hyperparameter sweep for FashionMNIST: `python sweeps/fashion.py --smoke`.

Thin entry point (no training code here): flags, precedence and the sweep itself live in
`snnsearch.sweep`. Works locally and under `ray job submit -- python sweeps/fashion.py ...`
(it joins the cluster through RAY_ADDRESS). See docs/sweeps.md.
"""

import sys

from snnsearch.sweep.cli import main

if __name__ == "__main__":
    sys.exit(main("fashion"))
