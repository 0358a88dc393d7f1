"""What each task declares (``snnsearch.sweep.tasks``) against the code it describes: the
neuron and model gate tables against the real builders, the reported metric keys, and the
silence default that follows ``output_spikes``."""

from __future__ import annotations

from typing import Any

import pytest

from snnsearch.spaces.space import parse_space
from snnsearch.sweep.settings import resolve_settings
from snnsearch.sweep.tasks import CLASSIFY_MODEL_READS, NEURON_READS, TASKS, reported

NEURON_FIELDS = {"tau": 3.0, "D": 6, "v_threshold": 0.7, "surrogate_alpha": 3.0,
                 "detach_reset": False}


def _fingerprint(module: Any) -> dict[str, Any]:
    """Scalar settings of a neuron module and its surrogate, and its parameters."""
    out: dict[str, Any] = {f"p.{k}": t.tolist() for k, t in module.state_dict().items()}
    for obj, prefix in ((module, ""), (getattr(module, "surrogate_function", None), "sg.")):
        for key, value in (vars(obj) if obj is not None else {}).items():
            if isinstance(value, int | float | bool | str):
                out[prefix + key] = value
    return out


def test_neuron_reads_match_the_builders() -> None:
    from snnsearch.snn.neurons import NEURONS, NeuronSpec

    assert set(NEURON_READS) == set(NEURONS.names())
    for kind, reads in NEURON_READS.items():
        base = _fingerprint(NeuronSpec(kind=kind).build())
        for field, value in NEURON_FIELDS.items():
            changed = _fingerprint(NeuronSpec(kind=kind, **{field: value}).build()) != base
            assert changed == (field in reads), (kind, field)


def test_every_classification_model_declares_its_shape_keys() -> None:
    from snnsearch.classify.models.config import ModelShape
    from snnsearch.classify.models.registry import MODELS

    assert set(CLASSIFY_MODEL_READS) == set(MODELS.names())
    shape = {f for f in ModelShape.__dataclass_fields__}
    assert set().union(*CLASSIFY_MODEL_READS.values()) == shape


def test_reported_keys_cover_the_metric_constants_and_groups() -> None:
    classify = TASKS.get("classify").reports
    depth = TASKS.get("depth").reports
    assert classify is not None and depth is not None
    assert reported("val_acc", classify) and reported("energy/compute45_mj", classify)
    assert reported("abs_rel", depth) and not reported("val_acc", depth)
    assert not reported("nosuchmetric", classify)


def _settings(trainable: str, tune: dict[str, Any], **overrides: Any) -> bool:
    space = parse_space({"trainable": trainable, "space": {"lr": {"float": [0.1, 1.0]}},
                         "tune": tune}, source="s.yaml")
    return resolve_settings(space, task="t", overrides={"storage": "/tmp/x", **overrides,
                                                        "mlflow_uri": "sqlite:////tmp/x.db"}
                            ).silence


@pytest.mark.parametrize(("trainable", "tune", "flag", "expected"), [
    ("depth", {}, None, False),  # before: on, unless the space said silence: false
    ("classify", {}, None, True),
    ("snnsearch.testing.trainables:quadratic", {}, None, True),
    ("depth", {"silence": True}, None, True),  # the space's word wins over the task's
    ("depth", {}, True, True),  # and --silence over both
    ("classify", {"silence": True}, False, False),
])
def test_silence_default_follows_the_task(trainable: str, tune: dict[str, Any],
                                          flag: bool | None, expected: bool) -> None:
    assert _settings(trainable, tune, silence=flag) is expected
