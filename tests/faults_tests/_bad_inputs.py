"""The bad-input table: each case is a command line of the real sweep CLI plus the files it needs,
and the words its one ``error:`` line must contain (the file or flag, and the fix).

Placeholders in arguments: ``{tmp}`` the case's own folder, ``{data}`` a good MNIST/FashionMNIST
root, ``{kitti}`` a KITTI raw root of the case (symlinks to the real sample; ``kitti_*`` setups
break one file of it). Every case runs with ``--storage {tmp}/storage`` and a sqlite MLflow store
``{tmp}/mlflow.db`` unless it overrides them; the test checks that neither appears.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

DRIVE = "2011_09_26/2011_09_26_drive_0000_sync"


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input.

    Args:
        id: test id.
        args: CLI arguments (placeholders allowed); replace the defaults of the same flag.
        expect: substrings of the error line.
        task: sweeps/<task>.py.
        setup: prepares files in the case folder (called with it and the shared paths).
        warns: one tuple of substrings per ``warning:`` line expected before the error (a legal
            but surprising combination); no other warning line may appear.
    """

    id: str
    args: tuple[str, ...]
    expect: tuple[str, ...]
    task: str = "mnist"
    setup: Callable[[Path, dict[str, Path]], None] | None = None
    warns: tuple[tuple[str, ...], ...] = ()


def write_space(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _tiny_classify(**fixed: Any) -> dict[str, Any]:
    return {"trainable": "classify", "experiment": "bad_input",
            "fixed": {"dataset": "mnist", "model": "fc", "T": 2, **fixed},
            "space": {"lr": {"float": [1.0e-4, 1.0e-2], "log": True}},
            "tune": {"samples": 1, "max_epochs": 1, "scheduler": "fifo"}}


def _space(data: dict[str, Any]) -> Callable[[Path, dict[str, Path]], None]:
    return lambda tmp, paths: write_space(tmp / "space.yaml", data)


def _text(name: str, text: str) -> Callable[[Path, dict[str, Path]], None]:
    return lambda tmp, paths: (tmp / name).write_text(text)


def _mnist_copy(tmp: Path, paths: dict[str, Path]) -> Path:
    raw = tmp / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in sorted((paths["shared"] / "MNIST" / "raw").glob("*.gz")):
        (raw / gz.name).symlink_to(gz)
    return raw


def _truncated_gz(tmp: Path, paths: dict[str, Path]) -> None:
    raw = _mnist_copy(tmp, paths)
    (raw / "train-labels-idx1-ubyte.gz").unlink()
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08 cut short by a failed copy")


def _other_dataset(tmp: Path, paths: dict[str, Path]) -> None:
    raw = _mnist_copy(tmp, paths)
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").symlink_to(
        paths["shared"] / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte.gz")


def _truncated_idx(tmp: Path, paths: dict[str, Path]) -> None:
    raw = _mnist_copy(tmp, paths)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03" + bytes(12))


def _big_file(tmp: Path, paths: dict[str, Path]) -> None:
    (tmp / "space.yaml").write_text("# padding\n" * 120_000)


def _laughs(tmp: Path, paths: dict[str, Path]) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    (tmp / "space.yaml").write_text("\n".join(lines) + "\n")


def _stored_sweep(*, sign: bool = True, tamper: bool = False,
                  mlflow: str | None = None) -> Callable[[Path, dict[str, Path]], None]:
    """A sweep directory as a driver leaves it (sweep.json with the space, a tuner.pkl whose
    unpickling would create ``{tmp}/code_ran``), signed with the test's key."""

    def setup(tmp: Path, paths: dict[str, Path]) -> None:
        from snnsearch.spaces.space import parse_space
        from snnsearch.sweep import state_hmac
        from snnsearch.sweep.settings import resolve_settings

        space_data = _tiny_classify()
        write_space(tmp / "space.yaml", space_data)
        space = parse_space(space_data, source=str(tmp / "space.yaml"))
        settings = resolve_settings(space, task="mnist", overrides={
            "storage": str(tmp / "storage"), "name": "stored",
            "mlflow_uri": mlflow or f"sqlite:///{tmp / 'mlflow.db'}",
            "data_dir": str(paths["data"])})
        sweep = tmp / "storage" / "stored"
        sweep.mkdir(parents=True)
        (sweep / "sweep.json").write_text(json.dumps({**settings.to_dict(),
                                                      "space": space.to_dict()}))
        (sweep / "tuner.pkl").write_bytes(pickle.dumps(_Payload(tmp / "code_ran"), protocol=2))
        if sign:
            state_hmac.sign(str(sweep), name="stored")
        if tamper:  # replaced after signing: same kind of payload, different bytes
            (sweep / "tuner.pkl").write_bytes(
                pickle.dumps(_Payload(tmp / "code_ran"), protocol=4))

    return setup


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (os.mkdir, (self.marker,))


def _live_lock(tmp: Path, paths: dict[str, Path]) -> None:
    sweep = tmp / "storage" / "case"
    sweep.mkdir(parents=True)
    # This test process is alive: the lock is not stale.
    (sweep / ".snnsearch.lock").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "pid_start": None, "since": "now"}))


def _existing_sweep(tmp: Path, paths: dict[str, Path]) -> None:
    (tmp / "storage" / "case").mkdir(parents=True)
    (tmp / "storage" / "case" / "tuner.pkl").write_bytes(b"not read")


# --- KITTI -----------------------------------------------------------------------------------

def _kitti(tmp: Path, paths: dict[str, Path], frames: tuple[int, ...] = (1, 2)) -> Path:
    root = tmp / "kitti"
    src = paths["shared"] / "kitti_raw_sample"
    for file in src.rglob("*"):
        if file.is_file():
            target = root / file.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    split = "".join(f"{DRIVE} {f} l\n" for f in frames)
    (tmp / "train.txt").write_text(split)
    (tmp / "val.txt").write_text(split)
    return root


def _depth_space(tmp: Path, **fixed: Any) -> None:
    write_space(tmp / "space.yaml", {
        "trainable": "depth", "experiment": "bad_input_depth",
        "fixed": {"data": "kitti", "height": 64, "width": 192, "batch_size": 2,
                  "encoder": "resnet", "depth": 18, "pretrain": "none", "device": "cpu",
                  "train_split": str(tmp / "train.txt"), "val_split": str(tmp / "val.txt"),
                  **fixed},
        "space": {"lr": {"float": [1.0e-4, 1.0e-3], "log": True}},
        "tune": {"metric": "abs_rel", "mode": "min", "samples": 1, "max_epochs": 1,
                 "scheduler": "fifo", "cpus_per_trial": 1, "gpus_per_trial": 0}})


def _kitti_case(breaker: Callable[[Path, Path], dict[str, Any] | None],
                frames: tuple[int, ...] = (1, 2)) -> Callable[[Path, dict[str, Path]], None]:
    def setup(tmp: Path, paths: dict[str, Path]) -> None:
        root = _kitti(tmp, paths, frames)
        extra = breaker(tmp, root) or {}
        _depth_space(tmp, **extra)

    return setup


def _replace(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def _short_scan(tmp: Path, root: Path) -> None:
    scan = root / DRIVE / "velodyne_points" / "data" / "0000000002.bin"
    data = scan.read_bytes()
    _replace(scan, data[: len(data) - 4])  # 16-byte points, 4 bytes short: np.fromfile kept it


def _no_p_rect(tmp: Path, root: Path) -> None:
    calib = root / "2011_09_26" / "calib_cam_to_cam.txt"
    lines = [ln for ln in calib.read_text().splitlines() if not ln.startswith("P_rect_02")]
    _replace(calib, ("\n".join(lines) + "\n").encode())


def _pickled_gt(tmp: Path, root: Path) -> dict[str, Any]:
    import numpy as np

    data = np.empty(2, dtype=object)
    data[:] = [np.ones((2, 2)), np.ones((3, 3))]
    np.savez(tmp / "gt.npz", data=data)
    return {"gt_path": str(tmp / "gt.npz")}


def _short_gt(tmp: Path, root: Path) -> dict[str, Any]:
    import numpy as np

    np.savez(tmp / "gt.npz", data=np.ones((1, 4, 4), np.float32))
    return {"gt_path": str(tmp / "gt.npz")}


def _bad_split_line(tmp: Path, root: Path) -> None:
    (tmp / "train.txt").write_text(f"{DRIVE} 1 l\n{DRIVE} one l\n")


def _missing_frame(tmp: Path, root: Path) -> None:
    (root / DRIVE / "image_02" / "data" / "0000000003.png").unlink()


def _resized_frame(tmp: Path, root: Path) -> None:
    """Frame 2 of the real drive re-saved at another size (as a re-export would leave it)."""
    from PIL import Image

    frame = root / DRIVE / "image_02" / "data" / "0000000002.png"
    with Image.open(frame) as image:
        small = image.resize((621, 188))
    frame.unlink()
    small.save(frame)


def _not_an_image(tmp: Path, root: Path) -> None:
    _replace(root / DRIVE / "image_02" / "data" / "0000000001.png", b"<html>404</html>")


CRED_URI = "http://alice:" + "pw@mlflow.internal:5000"  # split: the credential scan
TWO_OBJ = "val_acc:max,energy_mj:min"
ASHA_WARNING = ("--scheduler asha with --objectives", "ASHA prunes on val_acc alone",
                "--scheduler moasha")


def _lr(**param: Any) -> Callable[[Path, dict[str, Path]], None]:
    """A tiny classification space whose only parameter ``lr`` is ``param``."""
    return _space({**_tiny_classify(), "space": {"lr": param}})


def _new_cases() -> list[Case]:
    """The cases added with issue 19 (bad input that used to reach Ray or pass silently)."""
    sp = ("--space", "{tmp}/space.yaml")
    kitti = ("--space", "{tmp}/space.yaml", "--data-dir", "{tmp}/kitti")
    mo = ("--objectives", TWO_OBJ, "--scheduler", "moasha")
    return [
        # --- flags that fell back to a default or reached Ray -------------------------------
        Case("name-empty", ("--name", ""), ("--name is empty",)),
        Case("name-like-a-flag", ("--name=-rf",), ("--name '-rf'", "starts with '-'")),
        Case("storage-empty", ("--storage", ""), ("--storage is empty",)),
        Case("mlflow-uri-empty", ("--mlflow-uri", ""), ("--mlflow-uri is empty",)),
        Case("reduction-factor-inf", ("--reduction-factor", "inf"),
             ("--reduction-factor inf", "finite")),
        Case("cpus-nan", ("--cpus-per-trial", "nan"), ("--cpus-per-trial nan", "finite")),
        Case("seed-negative", ("--seed", "-1"), ("--seed -1", "0..4294967295")),
        Case("keep-checkpoints-zero", ("--keep-checkpoints", "0"),
             ("--keep-checkpoints", ">= 1")),
        Case("repeats-negative", ("--repeats", "-2"), ("--repeats", ">= 0")),
        Case("pareto-ref-nan-inf", (*mo, "--pareto-ref", "nan,inf"),
             ("--pareto-ref 'nan,inf'", "finite")),
        Case("objectives-twice", ("--objectives", "val_acc:max,val_acc:min"),
             ("--objectives lists val_acc twice",)),
        Case("objectives-unreported", ("--objectives", "val_acc:max,energy:min", "--scheduler",
                                       "moasha"),
             ("--objectives energy:min", "never reports energy", "energy_mj")),
        Case("constraint-unreported", ("--constraint", "nosuchmetric<=1"),
             ("--constraint nosuchmetric<=1", "never reports nosuchmetric", "val_acc")),
        Case("metric-unreported", sp, ("{tmp}/space.yaml", "tune.metric accuracy",
                                       "never reports accuracy"),
             setup=_space({**_tiny_classify(), "tune": {"metric": "accuracy", "samples": 1}})),
        # --- MLflow stores that failed after Ray started ------------------------------------
        Case("mlflow-unknown-scheme", ("--mlflow-uri", "foo://bar"),
             ("--mlflow-uri foo://bar", "scheme 'foo'", "sqlite:////")),
        Case("mlflow-sqlite-unwritable", ("--mlflow-uri", "sqlite:////proc/forbidden/m.db"),
             ("/proc/forbidden/m.db", "cannot be written", "writable folder")),
        Case("mlflow-sqlite-under-a-file", ("--mlflow-uri", "sqlite:///{tmp}/file/m.db"),
             ("{tmp}/file/m.db", "{tmp}/file is a file"), setup=_text("file", "x")),
        Case("mlflow-sqlite-in-memory", ("--mlflow-uri", "sqlite://"),
             ("in-memory", "vanish")),
        # --- spaces -------------------------------------------------------------------------
        Case("space-float-nan", sp, ("{tmp}/space.yaml", "space.lr.float", "nan is not a "
                                     "finite number"),
             setup=_lr(float=[float("nan"), 1.0e-2])),
        Case("space-float-inf", sp, ("{tmp}/space.yaml", "space.lr.float", "inf is not"),
             setup=_lr(float=[1.0e-4, float("inf")])),
        Case("space-step-nan", sp, ("space.lr.step", "positive number, got nan"),
             setup=_lr(float=[1.0e-4, 1.0e-2], step=float("nan"))),
        Case("space-categorical-nan", sp, ("space.lr.categorical", "nan is not"),
             setup=_lr(categorical=[float("nan"), 1.0e-3])),
        Case("space-fixed-nan", sp, ("fixed.weight_decay", "nan is not"),
             setup=_space(_tiny_classify(weight_decay=float("nan")))),
        Case("space-D-under-when-lif", sp, ("space.D", "only read by neuron in ['ilif']",
                                            "when allows neuron lif only"),
             setup=_space({**_tiny_classify(), "space": {
                 "neuron": {"categorical": ["lif", "ilif"]},
                 "D": {"int": [2, 8], "when": {"neuron": "lif"}}}})),
        Case("space-tau-for-if", sp, ("space.tau", "only read by neuron", "neuron is fixed to "
                                      "if"),
             setup=_space({**_tiny_classify(neuron="if"), "space": {
                 "tau": {"float": [1.5, 4.0]}}})),
        Case("space-shape-of-another-model", sp, ("space.channels", "only read by model in "
                                                  "['csnn', 'csnn_ann']", "model is fixed to fc"),
             setup=_space({**_tiny_classify(), "space": {"channels": {"int": [8, 32]}}})),
        Case("space-trainable-unknown", sp, ("{tmp}/space.yaml", "trainable 'nosuch'",
                                             "classify, depth"),
             setup=_space({**_tiny_classify(), "trainable": "nosuch"})),
        Case("space-trainable-not-importable", sp, ("trainable 'no_such_pkg.mod:train'",
                                                    "no importable module"),
             setup=_space({**_tiny_classify(), "trainable": "no_such_pkg.mod:train"})),
        Case("space-is-a-directory", ("--space", "{tmp}"), ("{tmp}", "no such search-space")),
        # --- legal but surprising: a warning line, then this case's error -------------------
        Case("asha-two-objectives-warns", ("--objectives", TWO_OBJ, "--data-dir", "{tmp}"),
             ("{tmp}/MNIST/raw/", "missing"), warns=(ASHA_WARNING,)),
        Case("tiebreak-without-moasha-warns", ("--moasha-tiebreak", "epsnet", "--data-dir",
                                               "{tmp}"),
             ("{tmp}/MNIST/raw/", "missing"),
             warns=(("--moasha-tiebreak epsnet has no effect", "--scheduler asha"),)),
        # --- KITTI --------------------------------------------------------------------------
        Case("kitti-frame-other-size", kitti,
             (f"{{tmp}}/kitti/{DRIVE}/image_02/data/0000000002.png", "621x188",
              "0000000000.png", "1242x375"), task="depth", setup=_kitti_case(_resized_frame)),
        Case("kitti-frame-not-an-image", kitti,
             (f"{{tmp}}/kitti/{DRIVE}/image_02/data/0000000001.png", "not a readable image"),
             task="depth", setup=_kitti_case(_not_an_image)),
    ]


def cases(free_port: int) -> list[Case]:
    """The table (``free_port``: a port nothing listens on, for the MLflow case)."""
    sp = ("--space", "{tmp}/space.yaml")
    good_lif = _tiny_classify(neuron="lif")
    return [
        # --- flags --------------------------------------------------------------------------
        Case("name-traversal", ("--name", "../../etc/x"), ("--name", "'../../etc/x'")),
        Case("name-dotdot", ("--name", ".."), ("--name", "'..'")),
        Case("name-absolute", ("--name", "/etc/x"), ("--name", "single folder name")),
        Case("name-space", ("--name", "a b"), ("--name", "letters, digits")),
        Case("samples-zero", ("--samples", "0"), ("--samples", ">= 1")),
        Case("samples-not-int", ("--samples", "x"), ("--samples", "invalid int", "--help")),
        Case("max-epochs-zero", ("--max-epochs", "0"), ("--max-epochs", ">= 1")),
        Case("grace-over-epochs", ("--grace", "5", "--max-epochs", "2"), ("--grace", "<= --max")),
        Case("eta-one", ("--reduction-factor", "1"), ("--reduction-factor", "> 1")),
        Case("cpus-negative", ("--cpus-per-trial", "-1"), ("--cpus-per-trial", ">= 0")),
        Case("gpus-fraction-over-one", ("--gpus-per-trial", "1.5"), ("--gpus-per-trial",
                                                                       "whole number")),
        Case("gpus-absent", ("--gpus-per-trial", "2"), ("--gpus-per-trial 2", "GPUs",
                                                        "PENDING", "--gpus-per-trial 0")),
        Case("cpus-beyond-machine", ("--cpus-per-trial", "4096"), ("--cpus-per-trial 4096",
                                                                   "CPUs")),
        Case("concurrency-zero", ("--concurrency", "0"), ("--concurrency", ">= 1")),
        Case("sampler-unknown", ("--sampler", "bogus"), ("--sampler", "invalid choice")),
        Case("scheduler-unknown", ("--scheduler", "bogus"), ("--scheduler", "invalid choice")),
        Case("max-failures", sp, ("--max-failures -5", ">= 0"), setup=_space(
            {**_tiny_classify(), "tune": {"samples": 1, "max_failures": -5}})),
        Case("silence-from-zero", ("--silence-from", "0"), ("--silence-from", ">= 1")),
        Case("objectives-malformed", ("--objectives", "val_acc"),
             ("objectives", "metric:min|max")),
        Case("objectives-without-metric", ("--objectives", "energy_mj:min,train_loss:min"),
             ("--objectives", "val_acc:max")),
        Case("pareto-ref-count", ("--objectives", "val_acc:max,energy_mj:min", "--pareto-ref",
                                  "1"), ("--pareto-ref", "one per --objectives")),
        Case("mlflow-file-store", ("--mlflow-uri", "file:///tmp/mlruns"), ("file stores",
                                                                          "sqlite:///")),
        Case("mlflow-credentials", ("--mlflow-uri", CRED_URI), ("MLFLOW_TRACKING_PASSWORD",)),
        Case("mlflow-unreachable", ("--mlflow-uri", f"http://127.0.0.1:{free_port}"),
             (f"http://127.0.0.1:{free_port}", "unreachable", "--mlflow-uri")),
        Case("mlflow-relative-remote-storage", ("--storage", "s3://bucket/sweeps",
                                                "--mlflow-uri", "sqlite:///mlflow.db"),
             ("relative sqlite", "absolute sqlite:////")),
        Case("storage-under-a-file", ("--storage", "{tmp}/file/storage"),
             ("{tmp}/file/storage", "not writable", "--storage"), setup=_text("file", "x")),
        # --- datasets -----------------------------------------------------------------------
        Case("data-dir-is-a-file", ("--data-dir", "{tmp}/file"), ("--data-dir {tmp}/file",
                                                                   "is a file"),
             setup=_text("file", "x")),
        Case("data-dir-empty", ("--data-dir", "{tmp}"), ("{tmp}/MNIST/raw/", "missing",
                                                          "--data-dir")),
        Case("gz-truncated", ("--data-dir", "{tmp}/data"),
             ("{tmp}/data/MNIST/raw/train-labels-idx1-ubyte.gz", "truncated"),
             setup=_truncated_gz),
        Case("gz-of-the-other-dataset", ("--data-dir", "{tmp}/data"),
             ("{tmp}/data/MNIST/raw/t10k-labels-idx1-ubyte.gz", "is the FashionMNIST file"),
             setup=_other_dataset),
        Case("idx-truncated", ("--data-dir", "{tmp}/data"),
             ("{tmp}/data/MNIST/raw/", "corrupted (16 bytes"), setup=_truncated_idx),
        Case("fashion-missing", ("--data-dir", "{tmp}/data"),
             ("{tmp}/data/FashionMNIST/raw/", "missing"), task="fashion", setup=_mnist_copy),
        # --- space files --------------------------------------------------------------------
        Case("space-missing", ("--space", "{tmp}/nope.yaml"), ("{tmp}/nope.yaml",
                                                               "no such search-space")),
        Case("space-not-yaml", sp, ("{tmp}/space.yaml", "not valid YAML"),
             setup=_text("space.yaml", "space: [unclosed\n")),
        Case("space-deep", sp, ("{tmp}/space.yaml", "nested deeper than 32"),
             setup=_text("space.yaml", "[" * 20000)),
        Case("space-alias-bomb", sp, ("{tmp}/space.yaml", "aliases"), setup=_laughs),
        Case("space-huge", sp, ("{tmp}/space.yaml", "byte limit"), setup=_big_file),
        Case("space-unknown-section", sp, ("{tmp}/space.yaml", "unknown key"),
             setup=_text("space.yaml", "trainable: classify\nspace: {lr: {float: [0, 1]}}\n"
                                       "tunes: {samples: 1}\n")),
        Case("space-D-without-ilif", sp, ("{tmp}/space.yaml", "space.D", "neuron", "ilif"),
             setup=_space({**good_lif, "space": {
                 "lr": {"float": [1.0e-4, 1.0e-2], "log": True},
                 "D": {"int": [2, 8], "when": {"neuron": "ilif"}}}})),
        Case("space-D-fixed-for-lif", sp, ("{tmp}/space.yaml", "fixed.D",
                                           "only read by neuron"),
             setup=_space(_tiny_classify(neuron="lif", D=4))),
        Case("space-when-unknown-choice", sp, ("{tmp}/space.yaml", "not among its choices"),
             setup=_space({**_tiny_classify(), "space": {
                 "neuron": {"categorical": ["if", "lif"]},
                 "tau": {"float": [1.5, 4.0], "when": {"neuron": "plif"}}}})),
        Case("space-typo-key", sp, ("{tmp}/space.yaml", "hiden_width", "not a ClassifyConfig"),
             setup=_space(_tiny_classify(hiden_width=32))),
        Case("space-tau-bound", sp, ("{tmp}/space.yaml", "tau must be > 1"),
             setup=_space({**_tiny_classify(), "space": {"tau": {"float": [0.5, 2.0]}}})),
        # --- resume and storage -------------------------------------------------------------
        Case("resume-without-name", ("--resume", "--name", None), ("--resume needs --name",)),
        Case("resume-nothing-there", ("--resume", "--name", "ghost"), ("no sweep to resume",
                                                                        "{tmp}/storage/ghost")),
        Case("resume-other-space", ("--resume", "--name", "stored", "--space",
                                    "{tmp}/other.yaml"),
             ("--space {tmp}/other.yaml", "differs", "fixed.T", "drop --space"),
             setup=lambda tmp, paths: (_stored_sweep()(tmp, paths), write_space(
                 tmp / "other.yaml", _tiny_classify(T=4)))),
        Case("resume-other-mlflow", ("--resume", "--name", "stored", "--mlflow-uri",
                                     "sqlite:///{tmp}/other.db"),
             ("--resume: sweep logs to", "drop --mlflow-uri"), setup=_stored_sweep()),
        Case("resume-tampered-state", ("--resume", "--name", "stored"),
             ("{tmp}/storage/stored/tuner.pkl", "HMAC", "not unpickled"),
             setup=_stored_sweep(tamper=True)),
        Case("resume-unsigned-state", ("--resume", "--name", "stored"),
             ("{tmp}/storage/stored", "no state signatures"), setup=_stored_sweep(sign=False)),
        Case("sweep-exists", ("--name", "case"), ("{tmp}/storage/case", "already holds a sweep",
                                                  "--resume"), setup=_existing_sweep),
        Case("sweep-locked", ("--name", "case"), ("in use by another driver",
                                                  f"host {socket.gethostname()}, PID"),
             setup=_live_lock),
        # --- KITTI --------------------------------------------------------------------------
        Case("kitti-missing-frame", ("--space", "{tmp}/space.yaml", "--data-dir", "{tmp}/kitti"),
             ("KITTI frame missing", f"{{tmp}}/kitti/{DRIVE}/image_02/data/0000000003.png"),
             task="depth", setup=_kitti_case(_missing_frame)),
        Case("kitti-short-scan", ("--space", "{tmp}/space.yaml", "--data-dir", "{tmp}/kitti"),
             (f"{{tmp}}/kitti/{DRIVE}/velodyne_points/data/0000000002.bin", "16-byte points"),
             task="depth", setup=_kitti_case(_short_scan)),
        Case("kitti-calib-no-p-rect", ("--space", "{tmp}/space.yaml", "--data-dir",
                                       "{tmp}/kitti"),
             ("{tmp}/kitti/2011_09_26/calib_cam_to_cam.txt", "P_rect_02"),
             task="depth", setup=_kitti_case(_no_p_rect)),
        Case("kitti-pickled-gt", ("--space", "{tmp}/space.yaml", "--data-dir", "{tmp}/kitti"),
             ("{tmp}/gt.npz", "pickled", "export_gt_depths"), task="depth",
             setup=_kitti_case(_pickled_gt)),
        Case("kitti-gt-too-short", ("--space", "{tmp}/space.yaml", "--data-dir", "{tmp}/kitti"),
             ("{tmp}/gt.npz", "1 depth maps for 2"), task="depth", setup=_kitti_case(_short_gt)),
        Case("kitti-split-malformed", ("--space", "{tmp}/space.yaml", "--data-dir",
                                       "{tmp}/kitti"),
             ("{tmp}/train.txt:2", "expected"), task="depth",
             setup=_kitti_case(_bad_split_line)),
        Case("kitti-data-dir-missing", ("--space", "{tmp}/space.yaml", "--data-dir",
                                        "{tmp}/nowhere"),
             ("{tmp}/nowhere", "KITTI raw root"), task="depth", setup=_kitti_case(
                 lambda tmp, root: None)),
        *_new_cases(),
        *_cost_cases(),
    ]


def _cost_cases() -> list[Case]:
    """Cost-aware budgets (issue 22): ``--budget-seconds``, ``--time-attr cost`` and its
    seconds, checked before Ray starts (Ray's ASHA would assert only once Ray was up, and a
    seconds flag without ``--time-attr cost`` was read by nothing)."""
    cost = ("--time-attr", "cost")
    return [
        Case("budget-seconds-zero", ("--budget-seconds", "0"), ("--budget-seconds 0", "> 0")),
        Case("budget-seconds-nan", ("--budget-seconds", "nan"), ("--budget-seconds nan",
                                                                  "finite")),
        Case("cost-without-max-seconds", (*cost, "--grace-seconds", "5"),
             ("--time-attr cost needs --max-seconds", "--grace-seconds 60 --max-seconds")),
        Case("cost-without-grace-seconds", (*cost, "--max-seconds", "60"),
             ("--time-attr cost needs --grace-seconds",)),
        Case("grace-seconds-over-max", (*cost, "--grace-seconds", "120", "--max-seconds", "60"),
             ("--grace-seconds 120", "<= --max-seconds (60)")),
        Case("max-seconds-negative", (*cost, "--grace-seconds", "5", "--max-seconds", "-1"),
             ("--max-seconds -1", "> 0")),
        Case("seconds-without-cost", ("--grace-seconds", "5"),
             ("--grace-seconds 5", "only read with --time-attr cost")),
        Case("time-attr-unknown", ("--time-attr", "seconds"), ("--time-attr", "invalid choice")),
        Case("resume-other-budget", ("--resume", "--name", "stored", "--budget-seconds", "600"),
             ("--resume: the sweep keeps --budget-seconds none", "--warm-start"),
             setup=_stored_sweep()),
        Case("time-attr-yaml-unknown", ("--space", "{tmp}/space.yaml"),
             ("--time-attr 'seconds'", "epoch, cost"),
             setup=_space({**_tiny_classify(), "tune": {"time_attr": "seconds"}})),
        Case("cheap-first-negative", ("--cheap-first", "-2"),
             ("--cheap-first -2", "whole number of trials >= 0")),
        Case("cheap-first-without-t", ("--space", "{tmp}/space.yaml", "--cheap-first", "3"),
             ("--cheap-first needs a space that searches 'T'", "drop --cheap-first"),
             setup=_space(_tiny_classify())),  # it fixes T=2
    ]


def copy_tree_listing(root: Path) -> list[str]:
    """Every path under ``root`` (relative), to compare before/after a case."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


