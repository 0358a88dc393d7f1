"""``storage.signing``: ``sweep.json`` carries its own signature (``sweep.json.hmac``), which
covers the state signatures listed inside it; the signature is written before the file, so a
crash between the two leaves a readable sweep; tables are signed as the driver writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snnsearch.storage import signing


def test_sweep_json_verifies_and_any_change_is_caught(tmp_path: Path) -> None:
    signing.write_settings(str(tmp_path), {"name": "s", "data_dir": "/data"}, name="s")
    assert signing.read_settings(str(tmp_path), name="s") == {"name": "s", "data_dir": "/data"}
    assert signing.read_settings(str(tmp_path)) is not None  # name from the signature file
    with pytest.raises(signing.UntrustedStorage):  # signed under another sweep's name
        signing.read_settings(str(tmp_path), name="other")
    text = (tmp_path / "sweep.json").read_text()
    (tmp_path / "sweep.json").write_text(text.replace("/data", "/elsewhere"))
    with pytest.raises(signing.UntrustedStorage, match="does not match its signature"):
        signing.read_settings(str(tmp_path), name="s")


def test_an_edited_signature_list_breaks_the_sweep_json_signature(tmp_path: Path) -> None:
    (tmp_path / "tuner.pkl").write_bytes(b"state")
    signing.write_settings(str(tmp_path), {"name": "s"}, name="s")
    signing.sign(str(tmp_path), name="s")
    signing.verify_state(str(tmp_path), name="s")
    settings = json.loads((tmp_path / "sweep.json").read_text())
    settings[signing.HMAC_KEY]["tuner.pkl"].append("0" * 64)
    (tmp_path / "sweep.json").write_text(json.dumps(settings, indent=2))
    with pytest.raises(signing.UntrustedStorage, match="sweep.json does not match"):
        signing.verify_state(str(tmp_path), name="s")
    (tmp_path / signing.SETTINGS_SIGNATURE).write_text(json.dumps(
        {"name": "s", "digests": ["f" * 64]}))  # a forged signature file, without the key
    with pytest.raises(signing.UntrustedStorage, match="sweep.json does not match"):
        signing.verify_state(str(tmp_path), name="s")


@pytest.mark.parametrize("dies", ["/sweep.json", "/sweep.json.hmac"])
def test_a_crash_at_either_write_leaves_the_previous_sweep_json_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    from snnsearch.storage import sweepdir

    signing.write_settings(str(tmp_path), {"name": "s", "v": 1}, name="s")
    real = sweepdir.write_text

    def die_on_sweep_json(path: str, text: str) -> None:
        if path.endswith(dies):
            raise OSError("killed")
        real(path, text)

    monkeypatch.setattr(sweepdir, "write_text", die_on_sweep_json)
    with pytest.raises(OSError):
        signing.write_settings(str(tmp_path), {"name": "s", "v": 2}, name="s")
    monkeypatch.undo()
    assert signing.read_settings(str(tmp_path), name="s") == {"name": "s", "v": 1}


def test_unsigned_settings_are_data_for_readers_and_refused_for_resume(tmp_path: Path) -> None:
    (tmp_path / "sweep.json").write_text(json.dumps({"metric": "val_acc"}))
    assert signing.read_settings(str(tmp_path), required=False) == {"metric": "val_acc"}
    with pytest.raises(signing.UntrustedStorage, match="no state signatures"):
        signing.read_settings(str(tmp_path), name="s")
    assert signing.read_settings(str(tmp_path / "nowhere"), required=False) is None


def test_tables_are_signed_when_the_driver_writes_them(tmp_path: Path) -> None:
    from snnsearch.reporting.results import load_table, write_table

    signing.write_settings(str(tmp_path), {"name": "s"}, name="s")
    write_table([{"trial_id": "a"}], str(tmp_path))
    settings = signing.read_settings(str(tmp_path), name="s")
    data = (tmp_path / "trials.parquet").read_bytes()
    assert signing.verify_file(str(tmp_path), "trials.parquet", data, settings) is True
    assert list(load_table(str(tmp_path))["trial_id"]) == ["a"]
    assert signing.verify_file(str(tmp_path), "trials.parquet", data + b"x", settings) is False
    assert signing.verify_file(str(tmp_path), "other.parquet", data, settings) is None
