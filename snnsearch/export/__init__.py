"""Export: models that leave the sweep. A sweep's front (or one trial) as NIR graphs for
neuromorphic toolchains, with a JSON card per model, the exported graph checked against the trained
network on the test set, event counts on the target, and MLflow PyTorch models;
``python -m snnsearch.export`` is the CLI (docs/export.md).

May import: snnsearch.storage, snnsearch.reporting, snnsearch.tracking, snnsearch.classify,
snnsearch.snn, snnsearch.training, snnsearch.energy, snnsearch.registry, snnsearch.constants.
"""
