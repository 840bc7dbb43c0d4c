"""Scenario: a Debian 12 host as it comes - Docker SDK for Python from Debian's python3-docker (5.0.3), no pip.
Over SSH to node3 (the lab node that runs Debian's package), deploy a service with a volume, a published port and
limits, update its restart policy in place, stack it with a second service, read it back with service_info, and
remove it. The facts are read from node3's own engine; the SDK version from node3's python3.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LabState, Node, RunPlaybook
from module_runner import remove_service_objects

pytestmark = pytest.mark.lab

NODE_INDEX = 2  # node3: Debian's python3-docker
NAME = "ph-sdk"

PLAY = f"""
- name: Run the collection with Debian's Docker SDK
  hosts: node3
  gather_facts: false
  tasks:
    - name: Deploy by tag, resolved on the host
      dockhand.containers.service:
        name: {NAME}
        image: "{{{{ image }}}}"
        pin: true
        ports: ["127.0.0.1:19410:8080"]
        volumes: ["{NAME}-data:/data"]
        memory: 64m
        restart_policy: on-failure
        restart_retries: "{{{{ retries }}}}"
      register: deployed

    - name: Converge a stack next to it
      dockhand.containers.stack:
        name: {NAME}-stack
        services:
          - name: {NAME}-side
            image: "{{{{ pinned }}}}"
            depends_on: []
      register: stacked

    - name: Read it back
      dockhand.containers.service_info:
        name: [{NAME}]
      register: info
"""


def node_sdk_version(lab: LabState, node: Node) -> str:
    command = ["ssh", "-i", str(lab.ssh_private_key), "-p", str(node.ssh_port), "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1",
               "python3 -c 'import docker, sys; print(docker.__version__, docker.__file__)'"]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip()


@pytest.fixture
def clean(engine: Any) -> Iterator[None]:
    remove_service_objects(engine, NAME)
    yield
    remove_service_objects(engine, NAME)


def test_modules_run_with_debians_sdk_5_0_3(
        lab: LabState, node: Node, engine: Any, run_playbook: RunPlaybook, clean: None) -> None:
    version = node_sdk_version(lab, node)
    assert version.startswith("5.0.3 /usr/lib/python3/dist-packages/docker/"), version  # Debian's, not pip's
    v1 = lab.images["v1"]
    extra = {"image": v1.tagged, "pinned": v1.pinned, "retries": 3}

    first = run_playbook(PLAY, extra_vars=extra).assert_ok()
    deployed = first.task("Deploy by tag, resolved on the host", "node3")
    assert deployed["actions"] == ["create"] and deployed["digest"] == v1.digest, first.describe()
    attrs = engine.containers.get(NAME).attrs
    assert attrs["Config"]["Image"] == v1.pinned
    assert attrs["State"]["Running"] is True
    assert attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert [(m["Name"], m["Destination"]) for m in attrs["Mounts"]] == [(f"{NAME}-data", "/data")]
    assert engine.containers.get(f"{NAME}-side").attrs["Config"]["Labels"]["dockhand.stack"] == f"{NAME}-stack"
    assert first.task("Read it back", "node3")["services"][0]["digest"] == v1.digest

    again = run_playbook(PLAY, extra_vars=extra)
    assert again.changed_count("node3") == 0, again.describe()

    started = attrs["State"]["StartedAt"]
    updated = run_playbook(PLAY, extra_vars=dict(extra, retries=4)).assert_ok()
    assert updated.task("Deploy by tag, resolved on the host", "node3")["actions"] == ["update"], updated.describe()
    after = engine.containers.get(NAME).attrs
    assert after["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 4}
    assert after["Id"] == attrs["Id"] and after["State"]["StartedAt"] == started  # in place, no restart
