"""``python -m snnsearch.cache``: where the cache lives, what --list shows, and --clear refusing an
entry that a running build or a reader holds (real KITTI frames, real synthetic scenes)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from snnsearch import cache as C


@pytest.fixture
def kitti_sample(shared_data: Path) -> Path:
    return shared_data / "kitti_raw_sample"


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_cache_dir_is_the_users_not_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(C.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert C.cache_root() == tmp_path / "home" / ".cache" / "snnsearch"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert C.cache_root() == tmp_path / "xdg" / "snnsearch"
    monkeypatch.setenv(C.CACHE_ENV, str(tmp_path / "mine"))
    assert C.cache_root() == tmp_path / "mine"
    from snnsearch.depth.data.frame_cache import default_cache_dir
    from snnsearch.depth.data.synthetic_scenes import SyntheticSpec, default_root

    assert default_cache_dir() == tmp_path / "mine" / "frames"
    assert default_root(SyntheticSpec()).parent == tmp_path / "mine" / "synthetic"


def test_list_shows_entries_sizes_and_purposes(
    cache_env: Path, kitti_sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from snnsearch.depth.data.frame_cache import ensure_cache
    from snnsearch.depth.data.kitti import frame_paths, scan_frames
    from snnsearch.depth.data.synthetic_scenes import SyntheticSpec, ensure_synthetic

    items = scan_frames(kitti_sample)[:2]
    ensure_cache(kitti_sample, frame_paths(kitti_sample, items), height=64, width=192).close()
    ensure_synthetic(spec=SyntheticSpec(num_scenes=2, frames_per_scene=3, height=32, width=64))
    assert C.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{cache_env}: ") and "in 2 entries" in out
    assert "decoded depth frames of" in out and "192x64 (4 rows)" in out
    assert "synthetic depth scenes (2 scenes x 3 frames, 64x32)" in out
    assert "; python -m snnsearch.cache --list/--clear)" in C.summary_line()
    assert "2 entries" in C.summary_line()


def test_clear_refuses_an_entry_being_built_or_read(
    cache_env: Path, kitti_sample: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from snnsearch.depth.data import frame_cache as FC
    from snnsearch.depth.data.kitti import frame_paths, scan_frames

    paths = frame_paths(kitti_sample, scan_frames(kitti_sample)[:1])
    FC.ensure_cache(kitti_sample, paths[:1], height=64, width=192).close()  # the entry exists
    decoding, release = threading.Event(), threading.Event()
    real = FC.decode

    def slow_decode(path: str, h: int, w: int) -> object:
        decoding.set()
        release.wait(30)
        return real(path, h, w)

    monkeypatch.setattr(FC, "decode", slow_decode)
    built: list[FC.FrameCache] = []
    builder = threading.Thread(target=lambda: built.append(
        FC.ensure_cache(kitti_sample, paths, height=64, width=192)))
    builder.start()
    assert decoding.wait(30)
    assert C.main(["--clear"]) == 2  # a build is growing it
    assert "is being built by a running process" in capsys.readouterr().err
    release.set()
    builder.join()
    assert C.main(["--clear"]) == 2  # the run now reads it
    assert "is in use by a running process" in capsys.readouterr().err
    built[0].close()
    assert C.main(["--clear"]) == 0
    assert "removed frames/" in capsys.readouterr().out
    assert C.entries() == []
    assert C.main(["--clear", "frames/nope"]) == 2
    assert "no cache entry 'frames/nope'" in capsys.readouterr().err
