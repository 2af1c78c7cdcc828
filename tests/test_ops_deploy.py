"""The deployment files in ``docker/``: they validate, and they agree with the gateway.

``docker compose config`` (or docker-compose v1) and ``kubectl kustomize`` run when those
clients are installed; the federation files are checked by the gateway's own config loader.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mqs.config import Settings, load_config, parse_config

DOCKER = Path(__file__).resolve().parent.parent / "docker"
K8S = DOCKER / "k8s"


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _compose_config(secret: str | None) -> subprocess.CompletedProcess[str]:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {k: v for k, v in os.environ.items() if k != "MQS_TOKEN_SECRET"}
    if secret is not None:
        env["MQS_TOKEN_SECRET"] = secret
    return subprocess.run(
        [*command, "-f", str(DOCKER / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_compose_file_validates() -> None:
    result = _compose_config("a-shared-secret")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"gateway", "redis", "demo"}
    gateway = services["gateway"]
    assert gateway["environment"]["MQS_CACHE_URL"] == "redis://redis:6379/0"
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["demo"]["profiles"] == ["demo"]


def test_compose_refuses_to_start_without_a_shared_token_secret() -> None:
    result = _compose_config(None)
    assert result.returncode != 0
    assert "MQS_TOKEN_SECRET" in result.stderr


def test_image_federation_file_is_valid() -> None:
    config = load_config(DOCKER / "federation.yaml", Settings(cache_url="redis://redis:6379/0"))
    assert config.cache.url == "redis://redis:6379/0"  # MQS_CACHE_URL wins, as compose sets it
    assert config.backends


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    lines = [line.strip() for line in (DOCKER / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and stages[1].endswith("AS runtime")
    user = next(line for line in lines if line.startswith("USER "))
    assert not user.startswith(("USER root", "USER 0"))
    healthcheck = next(i for i, line in enumerate(lines) if line.startswith("HEALTHCHECK "))
    assert "/_mgmt/ping" in lines[healthcheck + 1]


def _manifests() -> list[dict[str, Any]]:
    """The rendered manifests: ``kubectl kustomize`` when installed, else the files listed."""
    if shutil.which("kubectl"):
        result = subprocess.run(
            ["kubectl", "kustomize", str(K8S)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    return [doc for name in listed for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def _one(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def test_kubernetes_manifests() -> None:
    manifests = _manifests()
    federation = _one(manifests, "ConfigMap", "mqs-federation")["data"]["federation.yaml"]
    assert parse_config(yaml.safe_load(federation), "configmap").backends
    secret = _one(manifests, "Secret", "mqs-secrets")
    assert "MQS_TOKEN_SECRET" in secret["stringData"]
    deployment = _one(manifests, "Deployment", "mqs")
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    (gateway,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert env["MQS_CACHE_URL"] == "redis://mqs-redis:6379/0"
    assert gateway["envFrom"] == [{"secretRef": {"name": "mqs-secrets"}}]
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/_mgmt/ready"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/_mgmt/ping"
    assert pod["securityContext"]["runAsNonRoot"] is True
    pause = int(gateway["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > int(env["MQS_SHUTDOWN_TIMEOUT_S"]) + pause
    mounts = {m["mountPath"]: m["name"] for m in gateway["volumeMounts"]}
    assert mounts["/etc/mqs"] == "federation"
    assert _one(manifests, "Service", "mqs")["spec"]["ports"][0]["targetPort"] == "http"
    _one(manifests, "Deployment", "mqs-redis")
    _one(manifests, "Service", "mqs-redis")
