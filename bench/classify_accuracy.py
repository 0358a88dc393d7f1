"""Benchmark (not a test): test accuracy and wall time of the report's models through the trainable.

Default: MNIST CSNN (C=128, IF, ATan, bs=128, cosine LR) for T in {2, 4, 8}, and the Spikformer and
ANN transformer on FashionMNIST. Meant for a GPU session (a CPU run of this size takes hours):

  python bench/classify_accuracy.py --data-dir <root> --epochs 15 [--only csnn|spikformer]
"""

from __future__ import annotations

import argparse
import json
import time

from snnsearch.classify.trainable import train_classifier

RUNS = {
    "csnn": [{"dataset": "mnist", "model": "csnn", "channels": 128, "neuron": "if", "T": T}
             for T in (2, 4, 8)],
    "spikformer": [
        {"dataset": "fashion", "model": "spikformer", "embed_dim": 256, "heads": 8, "blocks": 2,
         "T": 4, "lr": 1e-3, "weight_decay": 0.01, "optimizer": "adamw"},
        {"dataset": "fashion", "model": "transformer_ann", "embed_dim": 256, "heads": 8,
         "blocks": 2, "lr": 1e-3, "weight_decay": 0.01, "optimizer": "adamw"},
        {"dataset": "fashion", "model": "csnn", "channels": 128, "neuron": "if", "T": 4},
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--only", choices=sorted(RUNS))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    for family, runs in RUNS.items():
        if args.only and family != args.only:
            continue
        for run in runs:
            start = time.perf_counter()
            final = train_classifier({"data_dir": args.data_dir, "epochs": args.epochs,
                                      "batch_size": 128, "device": args.device, **run})
            print(json.dumps({**run, "epochs": args.epochs, "test_acc": final["test_acc"],
                              "val_acc": final["val_acc"], "energy_mj": final["energy_mj"],
                              "wall_s": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
