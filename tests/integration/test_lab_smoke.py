"""Smoke test of the lab itself: a playbook over SSH pulls the v1 image by digest from the TLS registry on
every node and runs it; each node's engine, its published port and the haproxy frontend then serve v1.

It uses the docker CLI through ansible.builtin.command on purpose: it proves the lab (SSH, the node engines,
registry TLS and credentials, port publishing, haproxy), independently of the collection's own modules.
"""

from __future__ import annotations

from collections.abc import Iterator

import docker.errors
import pytest
from conftest import HaproxyAdmin, LabState, RunPlaybook, http_get, wait_until

pytestmark = pytest.mark.lab

CONTAINER = "dockhand-smoke"

RUN_V1_BY_DIGEST = f"""
- name: Run the v1 app pinned by digest on every node
  hosts: nodes
  gather_facts: false
  vars:
    smoke_image: "{{{{ dockhand_lab_images.v1.pinned }}}}"
  tasks:
    - name: Pull the v1 image by digest
      ansible.builtin.command: docker pull {{{{ smoke_image }}}}
      register: smoke_pull
      changed_when: "'Downloaded newer image' in smoke_pull.stdout"

    - name: Look for a running smoke container
      ansible.builtin.command: docker ps --quiet --filter name=^{CONTAINER}$
      register: smoke_running
      changed_when: false

    - name: Start the smoke container on port 8080
      ansible.builtin.command: >-
        docker run --detach --name {CONTAINER} --publish 8080:8080 {{{{ smoke_image }}}}
      when: smoke_running.stdout == ""
      changed_when: true
"""


@pytest.fixture
def smoke_cleanup(lab: LabState) -> Iterator[None]:
    """Leave the nodes as the test found them: no smoke container, no pulled image."""
    yield
    for node in lab.nodes:
        client = node.client()
        try:
            try:
                client.containers.get(CONTAINER).remove(force=True)
            except docker.errors.NotFound:
                pass
            try:
                client.images.remove(lab.images["v1"].pinned, force=True)
            except docker.errors.ImageNotFound:
                pass
        finally:
            client.close()


def test_playbook_runs_v1_by_digest_on_every_node_behind_haproxy(
    lab: LabState, run_playbook: RunPlaybook, haproxy: HaproxyAdmin, smoke_cleanup: None
) -> None:
    v1 = lab.images["v1"]

    first = run_playbook(RUN_V1_BY_DIGEST).assert_ok()
    for node in lab.nodes:
        assert first.records("Start the smoke container on port 8080", node.name)[0].status == "changed", first.describe()

    for node in lab.nodes:
        client = node.client()
        try:
            container = client.containers.get(CONTAINER)
            assert container.status == "running", f"{node.name}: {CONTAINER} is {container.status}"
            image = client.images.get(container.attrs["Image"])
            assert v1.pinned in image.attrs["RepoDigests"], f"{node.name}: {image.attrs['RepoDigests']}"
        finally:
            client.close()
        version_url = f"http://127.0.0.1:{node.app_port}/version"
        wait_until(f"{node.name} to serve v1 at {version_url}", lambda: http_get(version_url) == "v1", timeout=20)

    wait_until("haproxy to see all three nodes UP", lambda: set(haproxy.servers().values()) == {"UP"}, timeout=30)
    answers = {http_get(f"{lab.frontend_url}/version") for _request in range(6)}
    assert answers == {"v1"}, f"haproxy frontend answered {answers}"

    again = run_playbook(RUN_V1_BY_DIGEST)
    again.assert_unchanged()
    assert again.changed_count() == 0, again.describe()
