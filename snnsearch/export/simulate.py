"""Runs a network on images T steps at a time and records what the hardware would see.

Three runners with one result type, so the trained model, the ``.nir`` file loaded back by
spikingjelly (``nir_exchange.import_from_nir``) and the file loaded by a second framework
(snnTorch's ``import_from_nir``) are compared on the same images:

- class predictions (argmax of output spike counts over T; ties resolve to the lowest class, as
  ``argmax`` does in our trainable's evaluation);
- spikes per neuron layer, in execution order;
- synaptic events per layer: every input spike of a conv/linear times the synapses it drives,
  counted exactly (a conv's border taps included), which is what an event-driven chip executes.

One correction to snnTorch's import, stated here and in the card: NIR nodes describe one sample
(no batch axis) and snnTorch 1.0 maps NIR's ``Flatten(start_dim=0)`` to
``torch.nn.Flatten(0, -1)`` literally, which flattens a whole batch into one vector. Batches run
with that flatten set to keep the batch axis; a few images also run one at a time through the
net exactly as imported, and both must agree (:func:`run_snntorch_nir`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class RunResult:
    """Args:
    counts: ``[N, classes]`` output spike counts over the T steps.
    layer_spikes: neuron layer (execution order) → spikes on the probe batch.
    events: weight layer (execution order) → synaptic events per image (spiking inputs only).
    macs: weight layer → MACs per image for layers fed real values (the direct-encoded image).
    estimate: the trainable's estimate, (layer, "mac"|"ac", ops per image) (``run_trained``).
    """

    counts: torch.Tensor
    layer_spikes: dict[str, float] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)
    macs: dict[str, float] = field(default_factory=dict)
    estimate: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def predictions(self) -> torch.Tensor:
        return self.counts.argmax(1)


def _is_spikes(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def synaptic_events(module: nn.Module, x: torch.Tensor) -> float:
    """Synapses driven by the spikes in ``x`` (a batch): Σ over spikes of the spike's fan-out.

    Linear: each spike reaches ``out_features`` synapses. Conv2d (groups 1): a spike at (i, j)
    reaches ``out_channels`` × the output positions whose window covers (i, j); summing a
    ones-kernel convolution of the spike map gives that count without enumerating spikes.
    """
    if isinstance(module, nn.Linear):
        return float(x.sum(dtype=torch.float64)) * module.out_features
    if isinstance(module, nn.Conv2d):
        if x.dim() == 3:
            x = x.unsqueeze(0)
        per_site = x.sum(1, keepdim=True, dtype=torch.float64)
        ones = torch.ones(1, 1, *module.kernel_size, dtype=torch.float64)
        covered = F.conv2d(per_site, ones, stride=module.stride, padding=module.padding,
                           dilation=module.dilation)
        return float(covered.sum()) * module.out_channels
    raise TypeError(f"no synaptic event count for {type(module).__name__}")


def _macs(module: nn.Module, x: torch.Tensor, out: torch.Tensor) -> float:
    if isinstance(module, nn.Linear):
        return float(out.numel() * module.in_features)
    kernel = module.in_channels // module.groups
    for k in module.kernel_size:
        kernel *= k
    return float(out.numel() * kernel)


class _Recorder:
    """Forward hooks: spikes out of neuron modules, events/MACs into weight modules."""

    def __init__(self, neurons: list[tuple[str, nn.Module]], weights: list[tuple[str, nn.Module]],
                 neuron_output: Callable[[object], torch.Tensor]) -> None:
        self.spikes = {name: 0.0 for name, _ in neurons}
        self.events = {name: 0.0 for name, _ in weights}
        self.macs = {name: 0.0 for name, _ in weights}
        self.handles = []
        for name, module in neurons:
            hook = self._spike_hook(name, neuron_output)
            self.handles.append(module.register_forward_hook(hook))
        for name, module in weights:
            self.handles.append(module.register_forward_hook(self._weight_hook(name)))

    def _spike_hook(self, name: str, pick: Callable[[object], torch.Tensor]):
        def hook(_module, _inputs, output) -> None:
            self.spikes[name] += float(pick(output).sum(dtype=torch.float64))
        return hook

    def _weight_hook(self, name: str):
        def hook(module, inputs, output) -> None:
            x = inputs[0]
            if _is_spikes(x):
                self.events[name] += synaptic_events(module, x)
            else:
                self.macs[name] += _macs(module, x, output)
        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _weights(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in net.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _batches(images: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(images), size):
        yield images[start:start + size]


def _finish(rec: _Recorder, counts: list[torch.Tensor], n: int, probe: bool) -> RunResult:
    rec.close()
    return RunResult(torch.cat(counts), dict(rec.spikes) if probe else {},
                     {k: v / n for k, v in rec.events.items()},
                     {k: v / n for k, v in rec.macs.items()})


@torch.no_grad()
def run_trained(model: nn.Module, images: torch.Tensor, *, T: int,
                batch_size: int = 500) -> RunResult:
    """Our multi-step model: counts = rate readout × T; spikes of every spikingjelly node; and,
    from the same forward pass, the trainable's energy estimate (``energy.counting``:
    (layer, "mac"|"ac", operations per image), averaged over every image) in ``estimate``."""
    from spikingjelly.activation_based import functional, neuron

    from snnsearch.energy.counting import estimate_energy

    neurons = [(n, m) for n, m in model.named_modules() if isinstance(m, neuron.BaseNode)]
    rec = _Recorder(neurons, [], lambda out: out)
    counts: list[torch.Tensor] = []
    totals: dict[tuple[str, str], float] = {}
    spikes: dict[str, float] = {}
    for batch in _batches(images, batch_size):
        functional.reset_net(model)
        outputs: list[torch.Tensor] = []
        report = estimate_energy(model, batch, timesteps=T, spiking=True,
                                 forward=lambda m, x: outputs.append(m(x)))
        counts.append(torch.round(outputs[0] * T))
        for layer in report.layers:
            key = (layer.name, layer.kind)
            totals[key] = totals.get(key, 0.0) + layer.ops * len(batch)
        if len(counts) == 1:
            spikes = dict(rec.spikes)
    functional.reset_net(model)
    rec.close()
    result = RunResult(torch.cat(counts), spikes)
    result.estimate = [(name, kind, ops / len(images)) for (name, kind), ops in totals.items()]
    return result


@torch.no_grad()
def run_spikingjelly_nir(path: str, images: torch.Tensor, *, T: int, dt: float,
                         batch_size: int = 500) -> RunResult:
    """The ``.nir`` file through spikingjelly's importer (explicit state, one call per step)."""
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    gm = import_from_nir(path, dt=dt)
    neurons = [(n, m) for n, m in gm.named_modules() if type(m).__name__ == "_NIRStatefulModule"]
    rec = _Recorder(neurons, _weights(gm), lambda out: out[0])
    counts, spikes = [], {}
    for index, batch in enumerate(_batches(images, batch_size)):
        state, total = None, torch.zeros(())
        for _ in range(T):
            out, state = gm(batch, state)
            total = total + out
        counts.append(total)
        if index == 0:
            spikes = dict(rec.spikes)
    result = _finish(rec, counts, len(images), probe=False)
    result.layer_spikes = spikes
    return result


def _batch_flatten(net: nn.Module) -> int:
    """Makes snnTorch's ``Flatten(0, -1)`` keep the batch axis (``Flatten(1, -1)``); returns how
    many it changed. NIR's Flatten counts dims without the batch; snnTorch 1.0 copies start_dim
    as is, correct only for one unbatched sample."""
    changed = 0
    for module in net.modules():
        if isinstance(module, nn.Flatten) and module.start_dim == 0:
            module.start_dim = 1
            changed += 1
    return changed


def _snntorch_steps(net: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    from snntorch import utils as snn_utils

    snn_utils.reset(net)
    total = torch.zeros(())
    for _ in range(T):
        out = net(x)
        total = total + (out[0] if isinstance(out, tuple) else out)
    return total


@torch.no_grad()
def run_snntorch_nir(path: str, images: torch.Tensor, *, T: int, probe: int = 500,
                     unbatched: int = 20) -> RunResult:
    """The ``.nir`` file through snnTorch's importer.

    Batched, with snnTorch's flatten corrected to keep the batch axis (:func:`_batch_flatten`);
    the first ``unbatched`` images also run one at a time through the importer's net as is (NIR's
    own per-sample semantics), and the two must give the same counts, else ValueError.
    """
    try:
        import nir
        import snntorch
        from snntorch.import_nir import import_from_nir
    except ImportError as err:  # a test/dev dependency, not needed to export
        raise ImportError("the snnTorch check needs snntorch: pip install 'snnsearch[dev]'"
                          ) from err
    graph = nir.read(path)
    as_is = _quiet(lambda: import_from_nir(graph))
    single = torch.stack([_snntorch_steps(as_is, image, T).reshape(-1)
                          for image in images[:unbatched]]) if unbatched else None
    net = _quiet(lambda: import_from_nir(graph))
    _batch_flatten(net)
    neurons = [(n, m) for n, m in net.named_modules() if isinstance(m, snntorch.Leaky)]
    rec = _Recorder(neurons, [], lambda out: out[0] if isinstance(out, tuple) else out)
    counts, spikes = [], {}
    for index, batch in enumerate(_batches(images, probe)):
        counts.append(_snntorch_steps(net, batch, T))
        if index == 0:
            spikes = dict(rec.spikes)
    rec.close()
    result = RunResult(torch.cat(counts), spikes)
    if single is not None and not torch.equal(single, result.counts[:unbatched]):
        raise ValueError("snnTorch: batched counts differ from one-image-at-a-time counts")
    return result


def _quiet(build: Callable[[], nn.Module]) -> nn.Module:
    """snnTorch's importer prints its threshold rescaling per layer; the card records it."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return build()
