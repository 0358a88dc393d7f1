"""Static checks of docker/: no Docker engine runs on CI, so what can be checked here is that the
files parse (YAML through ``safe_load`` only), that the image installs exactly as CI does with the
versions pyproject pins, that only loopback ports are published, that the Ray token and every
password come from secrets, and that the node entrypoint refuses to start without a token."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
RAY_NODES = ("ray-head", "ray-worker")


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _kuberay() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((DOCKER / "kuberay.yaml").read_text()))


def _launcher() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "cluster.yaml").read_text())


def _pins() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {Requirement(d).name: Requirement(d) for d in project["dependencies"]}


def _ci_install_command() -> str:
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    installs = [ln for ln in lines if ln.startswith("python -m pip install")]
    assert len(installs) == 1, installs
    return installs[0]


def _dockerfile_runs(name: str) -> list[str]:
    """RUN instructions of a Dockerfile, continuation lines joined."""
    text = (DOCKER / name).read_text().replace("\\\n", " ")
    return [ln.strip()[4:].strip() for ln in text.splitlines() if ln.strip().startswith("RUN ")]


@pytest.mark.parametrize("name", ["compose.yaml", "cluster.yaml", "kuberay.yaml"])
def test_yaml_files_parse_with_safe_load(name: str) -> None:
    docs = list(yaml.safe_load_all((DOCKER / name).read_text()))
    assert docs and all(isinstance(d, dict) for d in docs)


def test_image_installs_the_project_with_the_ci_command() -> None:
    command = _ci_install_command()
    runs = _dockerfile_runs("Dockerfile")
    assert any(command in run for run in runs), (
        f"docker/Dockerfile must RUN {command!r} like .ci/run; RUN lines: {runs}"
    )


def test_base_image_is_the_pinned_ray_and_python() -> None:
    base = next(ln.split()[1] for ln in (DOCKER / "Dockerfile").read_text().splitlines()
                if ln.startswith("FROM "))
    match = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-gpu", base)
    assert match, f"unexpected base image {base}"
    ray_version, major, minor = match.group(1), match.group(2), match.group(3)
    assert _pins()["ray"].specifier.contains(ray_version)
    assert ray_version == importlib.metadata.version("ray")  # the version CI tests with
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert f"{major}.{minor}" in SpecifierSet(project["requires-python"])


def test_mlflow_image_pins_the_project_mlflow() -> None:
    runs = " ".join(_dockerfile_runs("mlflow.Dockerfile"))
    version = re.search(r"mlflow\[auth\]==([\d.]+)", runs)
    assert version, runs
    assert _pins()["mlflow"].specifier.contains(version.group(1))
    assert version.group(1) == importlib.metadata.version("mlflow")


@pytest.mark.parametrize("name", ["Dockerfile", "mlflow.Dockerfile"])
def test_images_run_as_a_non_root_user(name: str) -> None:
    users = [ln.split()[1] for ln in (DOCKER / name).read_text().splitlines()
             if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users


def test_only_loopback_ports_are_published_and_gcs_never() -> None:
    services = _compose()["services"]
    published = {name: s.get("ports", []) for name, s in services.items()}
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            assert str(port).split(":")[1] not in ("6379", "5432", "9000"), f"{name}: {port}"
    assert published["ray-head"] == ["127.0.0.1:8265:8265"]
    assert published["mlflow"] == ["127.0.0.1:5000:5000"]


def test_compose_has_the_cluster_services_on_one_private_network() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"ray-head", "ray-worker", "mlflow", "postgres", "minio"} <= set(services)
    assert all(s.get("networks") == ["cluster"] for s in services.values())
    gpus = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpus["driver"] == "nvidia" and gpus["capabilities"] == ["gpu"]
    for node in RAY_NODES:  # every node sees the same storage_path (Ray >= 2.7, multi-node)
        assert "ray-storage:/shared/ray_results" in services[node]["volumes"]
    assert services["mlflow"]["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"


def test_ray_token_and_passwords_come_from_secret_files() -> None:
    compose = _compose()
    secrets = compose["secrets"]
    assert all(set(v) == {"file"} and v["file"].startswith("./secrets/") for v in secrets.values())
    assert "secrets/" in (DOCKER / ".gitignore").read_text().split()
    for node in RAY_NODES:
        service = compose["services"][node]
        env = service["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
        assert "ray_auth_token" in service["secrets"] and "RAY_AUTH_TOKEN" not in env
    pg = compose["services"]["postgres"]["environment"]
    assert pg["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in pg


def test_mlflow_runs_behind_its_basic_auth_app() -> None:
    script = (DOCKER / "mlflow-entrypoint.sh").read_text()
    assert "--app-name basic-auth" in script
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=\"$(secret mlflow_admin_password)\"" in script


_SECRET_KEY = re.compile(r"(password|passwd|token|secret|access_key)", re.I)


def _literal_secrets(node: Any, path: str = "") -> list[str]:
    """Paths of mapping entries whose key names a secret and whose value is a literal string
    (allowed: file paths, ${VAR} references, secret names and Kubernetes secret references)."""
    found: list[str] = []
    if isinstance(node, dict):
        if set(node) == {"name", "value"} and _SECRET_KEY.search(str(node["name"])):
            found.append(f"{path}.{node['name']}")
        for key, value in node.items():
            sub = f"{path}.{key}"
            if isinstance(value, str) and _SECRET_KEY.search(str(key)) and not (
                value.startswith(("/run/secrets/", "./secrets/", "${", "~/.ray/"))
                or key.endswith(("_FILE", "_PATH")) or value == "token"
            ):
                found.append(sub)
            found += _literal_secrets(value, sub)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _literal_secrets(item, f"{path}[{i}]")
    return found


def test_no_literal_credentials_in_cluster_configs() -> None:
    docs = [_compose(), _launcher(), *_kuberay()]
    assert [p for d in docs for p in _literal_secrets(d)] == []
    example = (DOCKER / ".env.example").read_text()
    assert not re.search(r"^\w*(PASSWORD|TOKEN|SECRET)\w*=", example, re.M | re.I)


def test_kuberay_cluster_takes_the_token_from_a_secret_and_stays_internal() -> None:
    cluster, pvc, policy = _kuberay()
    assert cluster["kind"] == "RayCluster" and cluster["spec"]["rayVersion"] == (
        importlib.metadata.version("ray"))
    head = cluster["spec"]["headGroupSpec"]
    assert head["serviceType"] == "ClusterIP"
    pods = [head["template"]["spec"]] + [g["template"]["spec"]
                                         for g in cluster["spec"]["workerGroupSpecs"]]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "ray-auth-token"
    worker = cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert "nvidia.com/gpu" in worker["resources"]["limits"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert policy["kind"] == "NetworkPolicy"
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {
        "app": "snnsearch"}


def test_cluster_launcher_copies_the_token_and_keeps_ray_ports_private() -> None:
    config = _launcher()
    assert config["file_mounts"] == {"/home/ray/.ray/auth_token": "~/.ray/auth_token"}
    assert "-e RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    rules = config["provider"]["security_group"]["IpPermissions"]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)]
    assert all(ip["CidrIp"] != "0.0.0.0/0" for r in rules for ip in r["IpRanges"])
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head


@pytest.mark.parametrize("name", ["entrypoint.sh", "mlflow-entrypoint.sh"])
def test_entrypoints_are_valid_bash(name: str) -> None:
    subprocess.run(["bash", "-n", str(DOCKER / name)], check=True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": "/nonexistent/token"},
         "Ray token file /nonexistent/token missing or empty"),
        ({"RAY_AUTH_TOKEN_PATH": "/nonexistent/token"}, "RAY_AUTH_MODE must be 'token'"),
    ],
)
@pytest.mark.parametrize("role", ["head", "worker"])
def test_node_entrypoint_refuses_to_start_without_a_token(
    role: str, env: dict[str, str], message: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    done = subprocess.run(["bash", str(DOCKER / "entrypoint.sh"), role], env={**clean, **env},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 64
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cluster_docs_name_the_private_ports() -> None:
    text = (REPO / "docs" / "cluster.md").read_text()
    for needed in ("6379", "8265", "RAY_AUTH_MODE=token", "docker compose", "ray job submit"):
        assert needed in text
