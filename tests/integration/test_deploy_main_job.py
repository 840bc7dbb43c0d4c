"""Scenario: the README's main job (deploy.yml) deploys the demo stack to this machine's engine by
digest, a second run changes nothing, and the engine runs exactly the resolved digest. deploy.yml is
the rolling playbook: with no inventory group docker_hosts it rolls to this machine alone, behind no
load balancer, and records the change in the audit log."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab


def remove_demo(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, ignore_removed=True, filters={"label": "dockhand.stack=demo"}):
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


def test_main_job_deploys_the_demo_by_digest_and_is_idempotent(lab: Any, run_playbook: Any, tmp_path: Path,
                                                               local_engine: docker.DockerClient) -> None:
    deploy_vars = yaml.safe_load((lab.dir / "deploy-vars.yml").read_text())
    # The job's lock and audit log default to /var/lib/dockhand and /var/log/dockhand; the test keeps its own.
    audit_log = tmp_path / "audit.jsonl"
    deploy_vars.update(rolling_update_audit_path=str(audit_log), rolling_update_lock_path=str(tmp_path / "deploy.lock"))
    first = run_playbook(REPO / "deploy.yml", extra_vars=deploy_vars)
    assert first.rc == 0, first.stdout + first.stderr
    changed = {r.action for r in first.results if r.status == "changed"}
    # The image may already be on this engine from an earlier run, so the pull may or may not change. The converge
    # writes the audit entry itself (one task).
    assert changed - {"dockhand.containers.deploy_prepare"} == {"dockhand.containers.deploy_apply"}

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

    [entry] = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert (entry["result"], entry["services"]) == ("updated", [{"name": "demo-web", "old": None, "new": v1.pinned}])
    assert not (tmp_path / "deploy.lock").exists()

    second = run_playbook(REPO / "deploy.yml", extra_vars=deploy_vars)
    assert second.rc == 0, second.stdout + second.stderr
    assert second.stats["localhost"]["changed"] == 0
    assert local_engine.containers.get("demo-web").id == container.id
    assert len(audit_log.read_text().splitlines()) == 1
