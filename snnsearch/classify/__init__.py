"""The classification task: MNIST and FashionMNIST with FC-SNNs, CSNNs and Spikformer.

``config`` (the trial config dataclass), ``data`` (the IDX files as tensors), ``checks`` (the
driver's dataset checks, no torch), ``models/`` (the model families, by name), ``loop`` (the epoch
functions) and ``trainable`` (the Ray Tune function trainable: data → model → epochs → report).

May import: snnsearch.storage, snnsearch.snn, snnsearch.training, snnsearch.energy, snnsearch.registry,
snnsearch.constants (never the engine, never another task).
"""
