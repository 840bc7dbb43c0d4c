"""Scenario: the README's main job (deploy.yml) deploys the demo stack to this machine's engine by
digest, a second run changes nothing, and the engine runs exactly the resolved digest."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def remove_demo(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": "dockhand.stack=demo"}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"name": "demo-web-data"}):
        volume.remove(force=True)


@pytest.fixture
def local_engine(lab: Any) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=lab.local_docker_host)
    remove_demo(client)
    yield client
    remove_demo(client)
    client.close()


def test_main_job_deploys_the_demo_by_digest_and_is_idempotent(lab: Any, run_playbook: Any,
                                                               local_engine: docker.DockerClient) -> None:
    deploy_vars = yaml.safe_load((lab.dir / "deploy-vars.yml").read_text())
    first = run_playbook(REPO / "deploy.yml", extra_vars=deploy_vars)
    assert first.rc == 0, first.stdout + first.stderr
    assert first.stats["localhost"]["changed"] == 1

    container = local_engine.containers.get("demo-web")
    v1 = lab.images["v1"]
    assert container.attrs["Config"]["Image"] == v1.pinned
    assert container.image.id == local_engine.images.get(v1.pinned).id
    assert container.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert container.attrs["HostConfig"]["LogConfig"] == {"Type": "json-file",
                                                          "Config": {"max-file": "3", "max-size": "10m"}}
    assert [m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume"] == ["demo-web-data"]
    with urllib.request.urlopen("http://127.0.0.1:18090/version", timeout=10) as response:
        assert response.read().decode().strip() == "v1"

    second = run_playbook(REPO / "deploy.yml", extra_vars=deploy_vars)
    assert second.rc == 0, second.stdout + second.stderr
    assert second.stats["localhost"]["changed"] == 0
    assert local_engine.containers.get("demo-web").id == container.id
