"""The depth task's inputs: KITTI raw frames, calibration and velodyne ground truth (``kitti``,
``gt``), the decoded-frame cache (``frame_cache``) and generated scenes (``synthetic_scenes``)."""
