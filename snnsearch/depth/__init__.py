"""The monocular depth task: monodepth2-style self-supervised training on KITTI raw (or generated
scenes), Eigen evaluation, spiking MS-ResNet encoders with I-LIF neurons.

``config`` (the trial config dataclass), ``data/`` (KITTI raw, the frame cache, synthetic scenes,
velodyne ground truth), ``splits`` (drive-disjoint split files; ``python -m snnsearch.depth.splits``),
``checks`` (the driver's KITTI checks, no torch), ``models/`` (depth net and encoders),
``geometry``/``losses`` (view synthesis, photometric and smoothness losses), ``eval`` (the Eigen
metrics), ``engine`` (train and validation steps), ``state`` (checkpoint contents), ``energy``,
``figures`` and ``trainable`` (the Ray Tune function trainable).

Reference: Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation", ICCV 2019
(github.com/nianticlabs/monodepth2); Eigen split evaluation as in Eigen et al., NeurIPS 2014.

May import: snnsearch.storage, snnsearch.snn, snnsearch.training, snnsearch.energy, snnsearch.registry,
snnsearch.constants (never the engine, never another task).
"""
