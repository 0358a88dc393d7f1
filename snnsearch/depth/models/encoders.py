"""Multi-scale image encoders for the depth network: spiking MS-ResNet and the ANN ResNet baseline.

Both return five feature maps at 1/2, 1/4, 1/8, 1/16, 1/32 of the input with 64, 64, 128, 256,
512 channels (monodepth2's ``ResnetEncoder`` interface), so one decoder serves both.

The spiking encoder reuses spikingjelly's MS-ResNet (Hu et al., "Advancing Spiking Neural Networks
towards Deep Residual Learning", TNNLS 2024): spikes before every conv, membrane shortcuts. Its
stem is 7×7/2 without max-pool and every stage strides 2, so stem, layer1…layer4 give exactly the
five scales. The static image is repeated over T steps (direct encoding) and each stage's membrane
output is averaged over T for the (non-spiking) decoder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from snnsearch.registry import Registry
from snnsearch.snn.neurons import NeuronSpec

if TYPE_CHECKING:  # torchvision is imported lazily (heavy)
    from torchvision.models import ResNet

log = logging.getLogger(__name__)
ENCODERS: Registry[Callable[..., nn.Module]] = Registry("depth encoder")
NUM_CH_ENC = (64, 64, 128, 256, 512)
DEPTHS = (18, 34)
# monodepth2 normalises inputs with these constants for both pretrained and scratch encoders.
_MEAN, _STD = 0.45, 0.225


class _NeuronFactory:
    """Adapter: MS-ResNet calls ``spiking_neuron(step_mode="m")``; we return ``spec.build()``."""

    def __init__(self, spec: NeuronSpec) -> None:
        self.spec = spec

    def __call__(self, **_: Any) -> nn.Module:
        return self.spec.build()


def _check_depth(depth: int) -> None:
    if depth not in DEPTHS:
        raise ValueError(f"encoder depth must be one of {DEPTHS} (got {depth})")


@ENCODERS.register("ms_resnet")
class SpikingResNetEncoder(nn.Module):
    """MS-ResNet-18/34 trunk (no classifier head) run for ``T`` steps.

    Args:
        depth: 18 or 34.
        neuron: neuron of every spiking site (LIF, I-LIF with D, IF, PLIF; "relu" = ANN twin).
        T: timesteps of the repeated static input.
        channels: stem width (64: the ImageNet layout; stages have 1, 1, 2, 4, 8 × channels).
        grad_checkpoint: recompute layer1..layer4 in the backward pass instead of keeping their
            ``[T, B, C, H, W]`` activations (memory for long T; see :func:`_checkpointed`).
    """

    def __init__(
        self,
        *,
        depth: int = 18,
        neuron: NeuronSpec,
        T: int = 2,
        channels: int = 64,
        grad_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        from spikingjelly.activation_based.model import ms_resnet  # needs h5py; heavy

        _check_depth(depth)
        if T < 1:
            raise ValueError(f"T must be >= 1 (got {T})")
        factory = ms_resnet.ms_resnet18 if depth == 18 else ms_resnet.ms_resnet34
        net = factory(
            T=T, num_classes=1, spiking_neuron=_NeuronFactory(neuron), base_channels=channels
        )
        self.num_ch_enc = (channels, channels, 2 * channels, 4 * channels, 8 * channels)
        self.grad_checkpoint = grad_checkpoint
        # Keep only the trunk: parameter names stay MS-ResNet's (stem.*, layer1.* …) so a
        # classification checkpoint of the same network loads by name.
        self.stem, self.layer1, self.layer2 = net.stem, net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        self.T = T
        self.spiking = neuron.is_spiking

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = ((image - _MEAN) / _STD).unsqueeze(0).expand(self.T, *image.shape)
        feats = [self.stem(x)]
        checkpoint = self.grad_checkpoint and torch.is_grad_enabled()
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            feats.append(_checkpointed(stage, feats[-1]) if checkpoint else stage(feats[-1]))
        return [f.mean(0) for f in feats]

    def load_imagenet(self, depth: int) -> list[str]:
        """torchvision's ImageNet ResNet weights, transferred by name (:func:`transfer_resnet`)."""
        return transfer_resnet(self, imagenet_state_dict(depth), origin=f"ImageNet resnet{depth}")

    @property
    def last_stage(self) -> nn.Module:
        return self.layer4


@contextmanager
def _buffers_kept(module: nn.Module) -> Iterator[None]:
    saved = [(b, b.clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def _checkpointed(stage: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``stage(x)`` under activation checkpointing, made exact for stateful spiking neurons.

    Why the wrapper: the backward pass re-runs ``stage``, but spikingjelly neurons keep their
    membrane potential between calls, so a plain re-run would start from the state the first run
    left behind and produce other spikes (wrong gradients). Each stage sees the whole T-step
    sequence in one multi-step call and starts from reset state anyway, so resetting it before
    every run is exact. The re-run must not update BatchNorm's running statistics a second time,
    so its buffers are restored afterwards.
    """
    from spikingjelly.activation_based import functional
    from torch.utils.checkpoint import checkpoint

    runs = []

    def run(inp: torch.Tensor) -> torch.Tensor:
        functional.reset_net(stage)
        recompute = bool(runs)
        runs.append(True)
        if not recompute:
            return stage(inp)
        with _buffers_kept(stage):
            return stage(inp)

    return checkpoint(run, x, use_reentrant=False)


def _torchvision_resnet(depth: int) -> ResNet:
    import torchvision

    _check_depth(depth)
    return torchvision.models.resnet18() if depth == 18 else torchvision.models.resnet34()


def imagenet_state_dict(depth: int) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights (hub cache or download); a clear error when unavailable."""
    import torchvision

    _check_depth(depth)
    weights = (
        torchvision.models.ResNet18_Weights.IMAGENET1K_V1
        if depth == 18
        else torchvision.models.ResNet34_Weights.IMAGENET1K_V1
    )
    try:
        return weights.get_state_dict(progress=False)
    except (OSError, RuntimeError) as err:  # offline: URLError is an OSError
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        raise RuntimeError(
            f"ImageNet weights for resnet{depth} are not cached at {cache} and cannot be "
            f"downloaded ({type(err).__name__}); put it there or use pretrain=checkpoint:<path>"
        ) from None


@ENCODERS.register("resnet")
class ResNetEncoder(nn.Module):
    """torchvision ResNet-18/34 trunk (monodepth2's encoder), the ANN baseline.

    Args:
        depth: 18 or 34.
        in_images: stacked input frames (2 for the pose network's 6-channel input).
    """

    num_ch_enc = NUM_CH_ENC

    def __init__(self, *, depth: int = 18, in_images: int = 1, **_: Any) -> None:
        super().__init__()
        net = _torchvision_resnet(depth)
        if in_images != 1:
            net.conv1 = nn.Conv2d(
                3 * in_images, 64, kernel_size=7, stride=2, padding=3, bias=False
            )
        # Typed attributes keep torchvision's parameter names (conv1.*, layer1.*, ...).
        self.conv1: nn.Module = net.conv1
        self.bn1: nn.Module = net.bn1
        self.relu: nn.Module = net.relu
        self.maxpool: nn.Module = net.maxpool
        self.layer1: nn.Module = net.layer1
        self.layer2: nn.Module = net.layer2
        self.layer3: nn.Module = net.layer3
        self.layer4: nn.Module = net.layer4
        self.in_images = in_images
        self.T = 1
        self.spiking = False

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1((image - _MEAN) / _STD)))
        feats = [x]
        x = self.layer1(self.maxpool(x))
        feats.append(x)
        for stage in (self.layer2, self.layer3, self.layer4):
            x = stage(x)
            feats.append(x)
        return feats

    @property
    def last_stage(self) -> nn.Module:
        return self.layer4

    def load_imagenet(self, depth: int) -> None:
        """ImageNet init; a multi-frame input tiles and divides the first conv (monodepth2)."""
        state = {k: v for k, v in imagenet_state_dict(depth).items() if not k.startswith("fc.")}
        if self.in_images != 1:
            state["conv1.weight"] = (
                state["conv1.weight"].repeat(1, self.in_images, 1, 1) / self.in_images
            )
        self.load_state_dict(state)


def resnet_to_ms_resnet_name(name: str) -> str:
    """torchvision ResNet parameter name → MS-ResNet's. Only the stem differs (``conv1``/``bn1`` →
    ``stem.0``/``stem.1``); blocks share ``layerX.Y.{conv1,bn1,conv2,bn2,downsample.0/1}``."""
    for old, new in (("conv1.", "stem.0."), ("bn1.", "stem.1.")):
        if name.startswith(old):
            return new + name[len(old):]
    return name


def transfer_resnet(
    encoder: nn.Module, state: Mapping[str, torch.Tensor], *, origin: str = "ResNet"
) -> list[str]:
    """Loads a torchvision ResNet's conv and BN tensors into an MS-ResNet encoder by name; returns
    (and logs in one line) the encoder tensors that had no counterpart.

    Expected leftovers: ``layer1.0.downsample.*`` (MS-ResNet's layer1 strides 2 where torchvision
    max-pools, so it needs a projection shortcut that ResNet-18/34 lack) and neuron parameters
    (PLIF). A shape mismatch (e.g. ``channels`` ≠ 64) is an error, never a silent skip.
    """
    own = encoder.state_dict()
    mapped = {
        resnet_to_ms_resnet_name(k): v for k, v in state.items() if not k.startswith("fc.")
    }
    unused = sorted(k for k in mapped if k not in own)
    loaded = {}
    for key, value in mapped.items():
        if key not in own:
            continue
        if value.shape != own[key].shape:
            raise ValueError(
                f"{origin} does not fit this encoder: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(own[key].shape)} (ImageNet weights need channels=64)"
            )
        loaded[key] = value
    missing = sorted(set(own) - set(loaded))
    encoder.load_state_dict(loaded, strict=False)
    log.warning(
        "%s -> %s: %d tensors loaded; no counterpart (kept at init): %s%s",
        origin, type(encoder).__name__, len(loaded), ", ".join(missing) or "none",
        f"; unused: {', '.join(unused)}" if unused else "",
    )
    return missing


def _strip_prefix(
    state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]
) -> tuple[str, dict[str, torch.Tensor]]:
    """Finds the prefix of ``own``'s keys in ``state`` (e.g. ``encoder.`` or ``module.``)."""
    ref = next(iter(own))
    for prefix in sorted({k[: -len(ref)] for k in state if k.endswith(ref)}, key=len):
        if all(prefix + k in state for k in own):
            return prefix, {k: state[prefix + k] for k in own}
    missing = ref if not any(k.endswith(ref) for k in state) else "some encoder keys"
    raise ValueError(f"missing {missing!r}")


def load_encoder_checkpoint(encoder: nn.Module, path: str | Path) -> None:
    """Initialises ``encoder`` from a checkpoint directory (``state.pt``) or ``.pt`` file.

    Accepts a bare state dict, or one under ``"model"``/``"state_dict"``, with any key prefix
    (``module.``, ``encoder.``, ...): in particular spiking ImageNet checkpoints of spikingjelly's
    ``MSResNet`` (``stem.*``, ``layerX.*``, ``head.*``), whose classifier keys are logged as unused.
    A missing file, missing keys or a shape mismatch is an error (never a silent random init).
    """
    from snnsearch.training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    for key in ("model", "state_dict"):
        if isinstance(state.get(key), dict):
            state = state[key]
    own = encoder.state_dict()
    name = type(encoder).__name__
    try:
        prefix, picked = _strip_prefix(state, own)
    except ValueError as err:
        raise ValueError(f"checkpoint {path} does not hold a {name} ({err})") from None
    for key, value in picked.items():
        if value.shape != own[key].shape:
            raise ValueError(
                f"checkpoint {path} does not fit {name}: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(own[key].shape)}"
            )
    encoder.load_state_dict(picked)
    unused = sorted(k for k in state if k.removeprefix(prefix) not in picked)
    log.warning("checkpoint %s -> %s: %d tensors loaded; unused: %s", path, name, len(picked),
                ", ".join(unused) or "none")
