"""A trained classification SNN as the per-step network NIR describes, and its ``.nir`` file.

Our models run multi-step (``[T, B, ...]``) and compute the first conv/linear once on the static
image; NIR describes one timestep of a graph that the hardware runs T times with the image as
input current every step (direct encoding). :func:`step_network` rebuilds the trained model as a
single-step ``nn.Sequential`` with the same weights, folding each BatchNorm into the conv/linear
before it, and :func:`export_nir` writes it with spikingjelly's own exporter
(``activation_based.nir_exchange.export_to_nir``), which covers every layer left after folding.

Why the folding is ours: spikingjelly's exporter has no BatchNorm mapping (NIR has no BN node),
so an unfolded BN would make the graph fail. In eval mode BN is an affine map per channel, which
``torch.nn.utils.fusion.fuse_conv_bn_eval`` / ``fuse_linear_bn_eval`` fold exactly.

What NIR cannot hold is refused before anything is written, as one line naming the layer and the
knob that makes the model exportable (:class:`NotExportable`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron

from snnsearch.classify.config import ClassifyConfig
from snnsearch.classify.models import create_model

# NIR's time step (seconds) per SNN timestep. 1e-4 s is the value NIR, spikingjelly and snnTorch
# default to (snnTorch's importer hard-codes it), so the graph loads with the same discretisation.
DT = 1e-4
EXPORTABLE_MODELS = ("fc", "csnn")
EXPORTABLE_NEURONS = ("if", "lif", "plif")


class NotExportable(ValueError):
    """The model holds a layer NIR cannot represent; the message names it and the knob."""


@dataclass(frozen=True)
class StepNetwork:
    """The single-step network and what the card needs to know about it.

    Args:
        net: ``nn.Sequential`` in spikingjelly single-step mode; input ``[B, C, H, W]`` each step.
        T: timesteps per inference.
        folded: names of the BatchNorm layers folded into the layer before them.
    """

    net: nn.Sequential
    T: int
    folded: tuple[str, ...]


def check_exportable(cfg: ClassifyConfig) -> None:
    """Config-level refusal (before any weights load): one line naming the knob."""
    if cfg.model not in EXPORTABLE_MODELS:
        if cfg.model == "spikformer":
            raise NotExportable(
                "model=spikformer: spiking self-attention multiplies spike tensors (Q·Kᵀ·V), "
                "which NIR has no node for; set model: fc or csnn to export")
        raise NotExportable(f"model={cfg.model}: only the spiking fc and csnn families export "
                            "to NIR (ANN twins have no spikes); set model: fc or csnn")
    if cfg.neuron not in EXPORTABLE_NEURONS:
        raise NotExportable(
            f"neuron={cfg.neuron} (D={cfg.D}): I-LIF emits integer counts through a rounding "
            "quantiser, not NIR's threshold-and-reset spike; set neuron: lif (or if, plif)")
    if cfg.model == "csnn" and cfg.pool != "avg":
        raise NotExportable("layer features.1 (MaxPool2d): NIR has no max pooling; "
                            "set pool: avg")


def _check_module(name: str, module: nn.Module) -> None:
    """Module-level refusal: what a config check cannot see (soft reset, other layers)."""
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        raise NotExportable(f"layer {name} (MaxPool2d): NIR has no max pooling; set pool: avg")
    if isinstance(module, neuron.BaseNode):
        if isinstance(module, neuron.ILIFNode):
            raise NotExportable(f"layer {name} (ILIFNode): integer spikes; set neuron: lif")
        if module.v_reset is None:
            raise NotExportable(f"layer {name} ({type(module).__name__}): soft reset "
                                "(v_reset=None) is not NIR's reset-to-v_reset; use hard reset "
                                "(v_reset=0, the default of snnsearch's neurons)")


def _fold(weighted: nn.Module, bn: nn.Module) -> nn.Module:
    """``weighted`` followed by eval-mode ``bn`` as one layer (torch's exact fusion)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    if isinstance(weighted, nn.modules.conv._ConvNd):
        return fuse_conv_bn_eval(weighted.eval(), bn.eval())
    return fuse_linear_bn_eval(weighted.eval(), bn.eval())


def _pairs(module: nn.Module) -> nn.Module:
    """Average pooling with (h, w) pairs: NIR's AvgPool2d holds arrays of two, but spikingjelly
    writes an int as given (``AvgPool2d(2)``), which NIR readers such as snnTorch cannot
    iterate."""
    if isinstance(module, nn.AvgPool2d):
        from torch.nn.modules.utils import _pair

        module.kernel_size = _pair(module.kernel_size)
        module.stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        module.padding = _pair(module.padding)
    return module


def _flatten_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's layers in execution order (fc: input_layer, hidden, readout; csnn: stem,
    features, readout), with the readout's neuron as the output layer."""
    order: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if name == "readout":
            if not isinstance(child.neuron, neuron.BaseNode):
                raise NotExportable("readout: the ANN twin has no output spikes; set model: fc "
                                    "or csnn with a spiking neuron")
            order.append(("readout.neuron", child.neuron))
        elif isinstance(child, nn.Sequential):
            order += [(f"{name}.{n}", m) for n, m in child.named_children()]
        else:
            order.append((name, child))
    return order


def step_network(model: nn.Module, cfg: ClassifyConfig) -> StepNetwork:
    """The trained ``model`` (fc or csnn) as a single-step ``nn.Sequential`` with BN folded.

    Raises:
        NotExportable: a layer NIR cannot represent (one line: the layer and the knob).
    """
    check_exportable(cfg)
    layers: list[nn.Module] = [layer.Flatten()] if cfg.model == "fc" else []
    folded: list[str] = []
    for name, module in _flatten_modules(model):
        _check_module(name, module)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            prev = layers[-1] if layers else None
            if not isinstance(prev, (nn.modules.conv._ConvNd, nn.Linear)):
                raise NotExportable(f"layer {name} (BatchNorm): it follows no conv/linear, so it "
                                    "cannot be folded and NIR has no BN node")
            layers[-1] = _fold(prev, module)
            folded.append(name)
            continue
        layers.append(_pairs(copy.deepcopy(module)))
    net = nn.Sequential(*layers).eval()
    functional.set_step_mode(net, "s")
    functional.reset_net(net)
    return StepNetwork(net=net, T=cfg.T, folded=tuple(folded))


def load_trained(state: dict[str, Any]) -> tuple[nn.Module, ClassifyConfig]:
    """Model and config from a checkpoint state (``training.checkpoint.load_checkpoint``)."""
    cfg = ClassifyConfig.from_dict(state["config"])
    check_exportable(cfg)
    model = create_model(cfg.model, cfg.model_cfg())
    model.load_state_dict(state["model"])
    return model.eval(), cfg


def example_input(cfg: ClassifyConfig) -> torch.Tensor:
    side = cfg.model_cfg().image_size
    return torch.zeros(1, cfg.model_cfg().in_channels, side, side)


def export_nir(step: StepNetwork, cfg: ClassifyConfig, path: str | Path | None = None):
    """Writes the step network as a ``.nir`` (HDF5) file with spikingjelly's exporter.

    Returns:
        The ``nir.NIRGraph``.
    """
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    functional.reset_net(step.net)
    try:
        graph = export_to_nir(step.net, example_input(cfg), save_path=None, dt=DT)
    except NotImplementedError as err:  # a configuration the exporter refuses
        raise NotExportable(f"spikingjelly's NIR exporter: {err}") from err
    finally:
        functional.reset_net(step.net)
    if path is not None:
        import nir

        nir.write(str(path), graph)
    return graph
