"""Metric keys shared by trainables, the tuner, MLflow logging and the reports.

Defined once so Ray Tune (metric=...), MLflow and the Parquet table always agree on spelling.
Keys are flat (``val_acc``) so they can be typed on the command line (``--objectives val_acc:max``);
per-layer values use a ``group/`` prefix, which Ray Tune and MLflow both keep as-is.
"""

EPOCH = "epoch"
TRAIN_LOSS = "train_loss"
TRAIN_ACC = "train_acc"
VAL_LOSS = "val_loss"
VAL_ACC = "val_acc"
TEST_ACC = "test_acc"
# Test accuracy of the epoch with the best val_acc so far (model selection on val, never on test),
# and that epoch: what a report's "test accuracy" is compared with.
SELECTED_TEST_ACC = "selected_test_acc"
SELECTED_EPOCH = "selected_epoch"
EPOCH_TIME = "epoch_time_s"
IMAGES_PER_S = "train_images_per_s"
ENERGY_MJ = "energy_mj"
FIRING_RATE_PREFIX = "firing_rate/"
OUTPUT_RATE = "output_firing_rate"
# Output rate divided by the neuron's largest output per step (1 for binary spikes, D for I-LIF
# counts), so 1.0 means "every output neuron at its maximum in every step" for every neuron type.
OUTPUT_RATE_NORM = "output_rate_norm"
# Classification: share of validation images whose output layer emitted no spike in any step.
SILENT_FRACTION = "silent_fraction"
# Depth: share of spiking layers whose mean rate is below 1e-4 (a dead layer cuts the encoder).
SILENT_LAYER_FRACTION = "silent_layer_fraction"
PHOTOMETRIC_LOSS = "photometric_loss"
DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
STOP_REASON = "stop_reason"
# Energy (snnsearch.energy.metrics): the chosen model's split, every model's total, the ANN-twin
# ratio and break-even synaptic rate per model.
ENERGY_COMPUTE_MJ = "energy_compute_mj"
ENERGY_MEMORY_MJ = "energy_memory_mj"
ENERGY_ANN_MJ = "energy_ann_mj"
ENERGY_MODEL_PREFIX = "energy/"
ENERGY_RATIO_PREFIX = "energy_ratio/"
BREAKEVEN_PREFIX = "breakeven_rate/"
SYNAPTIC_RATE = "synaptic_rate"
