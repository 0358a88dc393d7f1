"""Shared pytest fixtures: telemetry off, the read-only data folder, one local Ray session, and a
session that leaves nothing behind in the temp dir or the home dir (checked at its end)."""

from __future__ import annotations

import getpass
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# The key that signs sweep state (snnsearch.sweep.state_hmac); without it the first sweep would
# create ~/.config/snnsearch/state_key, a file outside the test's folders.
os.environ.setdefault("SNNSEARCH_STATE_KEY", "snnsearch-tests-only")

# Ray keeps sessions, logs and Tune's trial staging folders under $RAY_TMPDIR/ray (default
# /tmp/ray, never cleaned). Tests (and the CLIs they start as subprocesses) get a private, short
# folder instead (Ray's socket paths must stay under 107 bytes), removed at the end of the run.
_REAL_TMP = Path(tempfile.gettempdir())
_HOME = Path.home()


def _listing() -> set[str]:
    """The temp dir's entries and the home dir's entries two levels deep (``~/ray_results/x``,
    ``~/.cache/snnsearch``): what a leak adds."""
    found = {f"{_REAL_TMP}/{p.name}" for p in _REAL_TMP.iterdir()}
    for top in _HOME.iterdir():
        found.add(str(top))
        if top.is_dir() and not top.is_symlink():
            try:
                found.update(str(p) for p in top.iterdir())
            except OSError:
                continue
    return found


_BEFORE = _listing()
_RAY_TMP = None
if "RAY_TMPDIR" not in os.environ:
    _RAY_TMP = tempfile.mkdtemp(prefix="snr")
    os.environ["RAY_TMPDIR"] = _RAY_TMP
# Caches the code and its libraries would keep in the user's home or the temp dir (the frame cache
# and synthetic scenes, the default MNIST folder ~/.cache/snnsearch/data, XDG caches,
# torch.compile's and Triton's, matplotlib's) go to one folder of this session, removed at its
# end. Set at import so subprocesses and Ray workers inherit it.
_SESSION = Path(tempfile.mkdtemp(prefix="snnsearch_tests_"))
for _name, _sub in (("SNNSEARCH_CACHE", "snnsearch"), ("SNNSEARCH_DATA", "data"),
                    ("XDG_CACHE_HOME", "xdg"),
                    ("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton"),
                    ("MPLCONFIGDIR", "matplotlib")):
    os.environ[_name] = str(_SESSION / _sub)
# pytest's own base temp (it keeps the last three runs there and removes older ones).
_PYTEST_OWN = {f"{_REAL_TMP}/pytest-of-{getpass.getuser()}"}


@pytest.fixture(scope="session", autouse=True)
def _leave_nothing_behind() -> Iterator[None]:
    """After the session (Ray shut down, its temp folder and this session's caches removed) the
    real temp dir and the home dir hold no entry they did not hold before; else the session
    fails naming them (the checkpoint folders of trainables run without a reporter and an
    experiment folder in ~/ray_results were such leaks)."""
    yield
    if _RAY_TMP is not None:
        shutil.rmtree(_RAY_TMP, ignore_errors=True)
    shutil.rmtree(_SESSION, ignore_errors=True)
    # multiprocessing's own temp folder of this process is removed when the interpreter exits.
    mp_tmp = multiprocessing.current_process()._config.get("tempdir")  # type: ignore[attr-defined]
    # pymp-*: multiprocessing's folder of a process the fault tests SIGKILL on purpose (a
    # process that exits removes its own); not something the package writes.
    leaked = sorted(p for p in _listing() - _BEFORE - _PYTEST_OWN - {str(mp_tmp)}
                    if not Path(p).name.startswith("pymp-"))
    assert not leaked, f"the test session left {len(leaked)} new entries: {', '.join(leaked)}"


# Real data for the tests that need it (README "Tests and real data"): $SNNSEARCH_TEST_DATA, else
# a ``shared/data`` folder beside the clone (where CI keeps it). Read-only: tests link or copy.
DATA_ENV = "SNNSEARCH_TEST_DATA"
SHARED_DATA = Path(
    os.environ.get(DATA_ENV) or Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder (``MNIST/raw``, ``FashionMNIST/raw``, ``kitti_raw_sample``); the
    test is skipped, with the reason in pytest's summary, when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs real data: {SHARED_DATA} not found; set {DATA_ENV} to a folder with "
                    "MNIST/raw, FashionMNIST/raw and kitti_raw_sample (README: Tests and real data)")
    return SHARED_DATA.resolve()


# The local Ray of the test session (2 CPUs: the CI machine).
RAY_INIT = {"address": "local", "num_cpus": 2, "include_dashboard": False, "log_to_driver": False}


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """One local Ray instance for all tests marked ``ray`` (``ray.init`` costs 3-4 s).

    Shuts down only the instance it started; never ``ray stop`` (it kills other users' Ray).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(**RAY_INIT)
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def ray_stopped() -> Iterator[None]:
    """No Ray in this process while the test runs, so it can assert that the code under test did
    not start Ray whatever ran before it (an earlier in-process sweep leaves its Ray up); a
    session that was up is started again afterwards."""
    import ray

    was_up = ray.is_initialized()
    if was_up:
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()
    if was_up:
        ray.init(**RAY_INIT)


@pytest.fixture(scope="session")
def mnist_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable data root with the official MNIST/FashionMNIST .gz files symlinked in
    (torchvision verifies their md5 and extracts them; nothing is downloaded)."""
    from snnsearch.testing.sweeps import classification_root

    return classification_root(tmp_path_factory.mktemp("data"), shared_data)


@pytest.fixture(scope="session")
def data_root(mnist_root: Path) -> Path:
    """The sweep tests' name for :func:`mnist_root`."""
    return mnist_root


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A sqlite tracking URI shared by the sweep tests (each uses its own runs); creating a store
    runs MLflow's schema migrations, ≈6 s on 2 cores, so it is made once per session."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def ray_local(ray_session: None) -> None:
    """The sweep tests' name for :func:`ray_session` (``address="local"``: a bare ``ray.init()``
    would attach to any other Ray running on the machine, e.g. test_job_submit.py's head)."""
    return ray_session
