"""Verify molecule-web on each lab node by asking the node's own engine (docker inspect), not the module."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

NAME = "molecule-web"
VOLUME = "molecule-web-data"


@pytest.fixture(scope="module")
def lab_vars(host: Any) -> dict[str, Any]:
    variables: dict[str, Any] = host.ansible.get_variables()
    return variables


@pytest.fixture(scope="module")
def container(host: Any) -> dict[str, Any]:
    inspected: dict[str, Any] = host.docker(NAME).inspect()
    return inspected


def test_container_is_running(host: Any) -> None:
    assert host.docker(NAME).is_running


def test_container_runs_the_v1_image_by_digest(host: Any, container: dict[str, Any],
                                               lab_vars: dict[str, Any]) -> None:
    v1 = lab_vars["dockhand_lab_images"]["v1"]
    assert container["Config"]["Image"] == v1["pinned"]
    image = json.loads(host.check_output("docker image inspect %s", container["Image"]))[0]
    assert v1["pinned"] in image["RepoDigests"]


def test_named_volume_is_mounted_at_data(container: dict[str, Any]) -> None:
    mounts = [(m["Type"], m.get("Name"), m["Destination"]) for m in container["Mounts"]]
    assert ("volume", VOLUME, "/data") in mounts


def test_logging_rotates_and_restart_is_bounded(container: dict[str, Any]) -> None:
    host_config = container["HostConfig"]
    assert host_config["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert host_config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_app_serves_v1_inside_the_node(host: Any) -> None:
    # The nodes have no HTTP client; the busybox app image has wget.
    assert host.check_output("docker exec %s wget -qO- http://127.0.0.1:8080/version", NAME).strip() == "v1"


def test_app_serves_v1_through_the_nodes_published_port(lab_vars: dict[str, Any]) -> None:
    # Port 8080 inside the node is published on the controller's loopback by the lab.
    url = "http://127.0.0.1:%d/version" % lab_vars["dockhand_lab_app_port"]
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read().decode().strip() == "v1"
