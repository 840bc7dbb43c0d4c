"""Scenario: the way a user runs it - ansible-playbook over SSH to every lab node (hosts: nodes), the module on the
node talking to the node's own engine, registry credentials and CA from the node's docker configuration. Deploy v1
by digest, publish the app port, a second run changes nothing, and pin: true on the node resolves the tag to the
same digest. The facts are read from each node's engine and from the app's published port.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker.errors
import pytest
from conftest import LabState, RunPlaybook, http_get
from module_runner import EngineEvents, remove_service_objects

pytestmark = pytest.mark.lab

NAME = "ss-web"

DEPLOY = f"""
- name: Deploy the web service on every node
  hosts: nodes
  gather_facts: false
  tasks:
    - name: Deploy web by digest
      dockhand.containers.service:
        name: {NAME}
        image: "{{{{ image }}}}"
        pin: "{{{{ pin | default(false) }}}}"
        ports: ["8080:8080"]
        volumes: ["{NAME}-data:/data"]
        env:
          NODE: "{{{{ inventory_hostname }}}}"
      register: web
"""


@pytest.fixture
def nodes_clean(lab: LabState) -> Iterator[None]:
    def clean() -> None:
        for node in lab.nodes:
            client = node.client()
            try:
                remove_service_objects(client, NAME)
            finally:
                client.close()

    clean()
    yield
    clean()


def _drop_v1_when_unused(lab: LabState) -> dict[str, bool]:
    """Remove v1 from each node if nothing uses it, so the first run must pull with the node's credentials."""
    missing = {}
    for node in lab.nodes:
        client = node.client()
        try:
            try:
                client.images.remove(lab.images["v1"].pinned)
            except docker.errors.APIError:
                pass
            try:
                client.images.get(lab.images["v1"].pinned)
                missing[node.name] = False
            except docker.errors.ImageNotFound:
                missing[node.name] = True
        finally:
            client.close()
    return missing


def test_deploy_over_ssh_on_all_nodes_then_a_second_run_changes_nothing(
        lab: LabState, run_playbook: RunPlaybook, nodes_clean: None) -> None:
    v1 = lab.images["v1"]
    missing = _drop_v1_when_unused(lab)
    watchers = {node.name: EngineEvents(node.client()).start() for node in lab.nodes}

    first = run_playbook(DEPLOY, extra_vars={"image": v1.pinned}).assert_ok()
    assert first.changed_count() == 3, first.describe()
    ids = {}
    for node in lab.nodes:
        result = first.task("Deploy web by digest", node.name)
        assert result["actions"] == ["create"] and result["digest"] == v1.digest, first.describe()
        client = node.client()
        try:
            container = client.containers.get(NAME)
            attrs = container.attrs
            assert container.id == result["container_id"]
            assert attrs["Config"]["Image"] == v1.pinned
            assert attrs["Image"] == client.images.get(v1.pinned).id
            assert attrs["State"]["Health"]["Status"] == "healthy"
            assert f"NODE={node.name}" in attrs["Config"]["Env"]
            assert attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
            assert attrs["HostConfig"]["LogConfig"]["Config"] == {"max-size": "10m", "max-file": "3"}
            assert [(m["Name"], m["Destination"]) for m in attrs["Mounts"]] == [(f"{NAME}-data", "/data")]
            pulls = watchers[node.name].stop().of("image", "pull")
            if missing[node.name]:  # pulled on the node, with the node's own docker config
                assert [e["id"] for e in pulls] == [v1.pinned], pulls
            ids[node.name] = container.id
        finally:
            client.close()
        # The app answers on the node's published port, from outside the node.
        assert http_get(f"http://127.0.0.1:{node.app_port}/version").strip() == "v1"

    second = run_playbook(DEPLOY, extra_vars={"image": v1.pinned}).assert_unchanged()
    for node in lab.nodes:
        assert second.task("Deploy web by digest", node.name)["container_id"] == ids[node.name]

    # pin: true resolves the tag on each node (node's CA and credentials) to the same digest: nothing to do.
    pinned = run_playbook(DEPLOY, extra_vars={"image": v1.tagged, "pin": True}).assert_unchanged()
    for node in lab.nodes:
        result = pinned.task("Deploy web by digest", node.name)
        assert result["digest"] == v1.digest and result["container_id"] == ids[node.name]
        client = node.client()
        try:
            assert client.containers.get(NAME).id == ids[node.name]
        finally:
            client.close()
