"""Scenarios: how modules find (or fail to find) the Docker Engine and the Docker SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

INFO = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Read managed services
      dockhand.containers.service_info:
{options}
"""


def info_play(**options: str) -> str:
    return INFO.format(options="\n".join("        %s: %s" % item for item in options.items()) or "        {}")


def test_docker_host_falls_back_to_the_DOCKER_HOST_environment_variable(lab: Any, run_playbook: Any) -> None:
    node = lab.nodes[0]
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Deploy a probe without docker_host
      dockhand.containers.service:
        name: conn-probe
        image: "{{ image }}"
        state: present
        registry_username: "{{ user }}"
        registry_password: "{{ password }}"
    - name: Read managed services
      dockhand.containers.service_info:
        name: [conn-probe]
"""
    try:
        result = run_playbook(play, env={"DOCKER_HOST": "unix://%s" % node.docker_socket},
                              extra_vars={"image": lab.images["v1"].pinned, "user": lab.registry_username,
                                          "password": lab.registry_password})
        assert result.rc == 0, result.stdout + result.stderr
        probe = node.client().containers.get("conn-probe")
        assert [s["container_id"] for s in result.task("Read managed services")["services"]] == [probe.id]
    finally:
        for container in node.client().containers.list(all=True, ignore_removed=True, filters={"name": "conn-probe"}):
            container.remove(force=True)


def test_unreachable_engine_is_a_clear_message(run_playbook: Any, tmp_path: Path) -> None:
    result = run_playbook(info_play(docker_host="unix://%s/no-such.sock" % tmp_path, timeout="5"))
    assert result.rc != 0
    message = result.task("Read managed services")["msg"]
    assert "no-such.sock" in message and "Docker Engine" in message
    assert "Traceback" not in message


def test_client_cert_without_key_is_refused(run_playbook: Any, tmp_path: Path) -> None:
    result = run_playbook(info_play(client_cert=str(tmp_path / "cert.pem"), tls="true"))
    assert result.rc != 0
    assert result.task("Read managed services")["msg"] == "client_cert and client_key must be given together"


def test_missing_docker_sdk_gives_ansibles_missing_library_message(run_playbook: Any, tmp_path: Path) -> None:
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = run_playbook(INFO.replace("{options}", "").replace("service_info:\n", "service_info: {}\n"),
                          extra_vars={"ansible_python_interpreter": str(bare / "bin" / "python")})
    assert result.rc != 0
    message = result.task("Read managed services")["msg"]
    assert "Failed to import the required Python library (docker (Docker SDK for Python >= 5.0.3))" in message


def test_group_module_defaults_reach_every_module(lab: Any, run_playbook: Any) -> None:
    node = lab.nodes[1]
    play = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/dockhand.containers.docker:
      docker_host: "unix://{{ socket }}"
      timeout: 30
  tasks:
    - name: Resolve the tag
      dockhand.containers.image_digest:
        image: "{{ tagged }}"
        registry_username: "{{ user }}"
        registry_password: "{{ password }}"
      register: resolved
    - name: Deploy it on the engine named by the group defaults
      dockhand.containers.service:
        name: group-probe
        image: "{{ resolved.pinned }}"
        state: present
        registry_username: "{{ user }}"
        registry_password: "{{ password }}"
    - name: Read managed services
      dockhand.containers.service_info:
        name: [group-probe]
"""
    try:
        result = run_playbook(play, extra_vars={"socket": str(node.docker_socket), "tagged": lab.images["v1"].tagged,
                                                "user": lab.registry_username,
                                                "password": lab.registry_password})
        assert result.rc == 0, result.stdout + result.stderr
        assert result.task("Resolve the tag")["pinned"] == lab.images["v1"].pinned
        probe = node.client().containers.get("group-probe")
        assert probe.attrs["Config"]["Image"] == lab.images["v1"].pinned
        assert [s["container_id"] for s in result.task("Read managed services")["services"]] == [probe.id]
    finally:
        for container in node.client().containers.list(all=True, ignore_removed=True, filters={"name": "group-probe"}):
            container.remove(force=True)
