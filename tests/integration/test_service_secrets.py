"""Scenario: a secret passed in secret_env reaches the container and nowhere else - not the playbook output (even
verbose, even with --diff), not the recorded task results, not the container's labels. Changing it recreates the
container and the diff says which secret changed, masked.

Runs through ansible-playbook (what prints output is Ansible itself) on localhost with docker_host to lab node3.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LabState, Node, PlaybookResult, RunPlaybook
from module_runner import remove_service_objects, run_module

pytestmark = pytest.mark.lab

NAME = "sx-secret"

DEPLOY = f"""
- name: Deploy a service with a secret
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy with secret_env
      dockhand.containers.service:
        name: {NAME}
        image: "{{{{ dockhand_lab_images.v1.pinned }}}}"
        docker_host: "{{{{ engine }}}}"
        registry_username: "{{{{ dockhand_lab_registry_username }}}}"
        registry_password: "{{{{ dockhand_lab_registry_password }}}}"
        env:
          PLAIN: visible
        secret_env:
          DB_PASSWORD: "{{{{ db_password }}}}"
      register: deployed
"""


@pytest.fixture(scope="module")
def node(lab: LabState) -> Node:
    return lab.nodes[2]


@pytest.fixture
def engine(node: Node) -> Iterator[Any]:
    client = node.client()
    remove_service_objects(client, NAME)
    yield client
    remove_service_objects(client, NAME)
    client.close()


def _leaks(run: PlaybookResult, secret: str) -> list[str]:
    places = {"stdout": run.stdout, "stderr": run.stderr,
              "recorded results": json.dumps([r.result for r in run.results])}
    return [where for where, text in places.items() if secret in text]


def test_secret_env_reaches_the_container_and_never_the_output_or_labels(
        lab: LabState, node: Node, engine: Any, run_playbook: RunPlaybook) -> None:
    first_secret, second_secret = "s3cr3t-" + secrets.token_hex(8), "s3cr3t-" + secrets.token_hex(8)
    verbose = {"ANSIBLE_VERBOSITY": "3"}

    first = run_playbook(DEPLOY, extra_vars={"engine": node.docker_host, "db_password": first_secret},
                         diff=True, env=verbose).assert_ok()
    assert _leaks(first, first_secret) == []
    container = engine.containers.get(NAME)
    assert f"DB_PASSWORD={first_secret}" in container.attrs["Config"]["Env"]
    assert "PLAIN=visible" in container.attrs["Config"]["Env"]
    assert first_secret not in json.dumps(container.attrs["Config"]["Labels"])
    assert first_secret not in json.dumps(container.attrs["HostConfig"])

    changed = run_playbook(DEPLOY, extra_vars={"engine": node.docker_host, "db_password": second_secret},
                           diff=True, env=verbose).assert_ok()
    assert _leaks(changed, second_secret) == [] and _leaks(changed, first_secret) == []
    result = changed.task("Deploy with secret_env")
    assert result["actions"] == ["recreate"] and result["changed_fields"] == ["secret_env"], changed.describe()
    assert result["diff"]["before"]["secret_env"] == {"DB_PASSWORD": "********"}
    assert result["diff"]["after"]["secret_env"] == {"DB_PASSWORD": "********"}
    assert result["diff"]["after"]["secret_env_changed"] == ["DB_PASSWORD"]
    assert "secret_env_changed" in changed.stdout  # the printed diff tells which secret changed, not its value
    recreated = engine.containers.get(NAME)
    assert recreated.id != container.id
    assert f"DB_PASSWORD={second_secret}" in recreated.attrs["Config"]["Env"]
    assert second_secret not in json.dumps(recreated.attrs["Config"]["Labels"])
    assert first_secret not in json.dumps(recreated.attrs["Config"]["Labels"])  # not even in previous-spec

    same = run_playbook(DEPLOY, extra_vars={"engine": node.docker_host, "db_password": second_secret},
                        env=verbose).assert_unchanged()
    assert _leaks(same, second_secret) == []
    assert engine.containers.get(NAME).id == recreated.id


def test_check_mode_diff_of_a_secret_change_is_masked(lab: LabState, node: Node, engine: Any) -> None:
    args = dict(name=NAME, image=lab.images["v1"].pinned, docker_host=node.docker_host,
                registry_username=lab.registry_username, registry_password=lab.registry_password)
    old, new = "old-" + secrets.token_hex(8), "new-" + secrets.token_hex(8)
    run_module("service", dict(args, secret_env={"API_TOKEN": old})).assert_ok()
    before_id = engine.containers.get(NAME).id
    predicted = run_module("service", dict(args, secret_env={"API_TOKEN": new}), check=True, diff=True).assert_ok()
    assert predicted.changed and predicted["changed_fields"] == ["secret_env"], predicted.describe()
    assert old not in predicted.stdout and new not in predicted.stdout
    assert predicted["diff"]["after"]["secret_env_changed"] == ["API_TOKEN"]
    container = engine.containers.get(NAME)
    assert container.id == before_id and f"API_TOKEN={old}" in container.attrs["Config"]["Env"]
