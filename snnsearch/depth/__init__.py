"""Self-supervised monocular depth (monodepth2 protocol): GT projection, Eigen evaluation,
view-synthesis geometry and the photometric/smoothness losses.

Reference: Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation", ICCV 2019
(github.com/nianticlabs/monodepth2); Eigen split evaluation as in Eigen et al., NeurIPS 2014.
"""

from snnsearch.depth.eval import DepthErrors, compute_errors, disp_to_depth, evaluate_disparities

__all__ = ["DepthErrors", "compute_errors", "disp_to_depth", "evaluate_disparities"]
