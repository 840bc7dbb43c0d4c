"""Verify the local scenario by asking this machine's engine (docker inspect) and the registry's
recorded digests, not the playbook: v2 runs by digest, with the declared restart policy and log
rotation, and the volume kept the data written while v1 ran."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

NAME = "ro-molecule-web"
VOLUME = "ro-molecule-data"
LAB = Path(os.environ.get("DOCKHAND_LAB_DIR", "/tmp/dockhand-lab"))


@pytest.fixture(scope="module")
def images() -> dict[str, Any]:
    state: dict[str, Any] = json.loads((LAB / "state.json").read_text())
    return dict(state["images"])


@pytest.fixture(scope="module")
def container(host: Any) -> dict[str, Any]:
    inspected: dict[str, Any] = host.docker(NAME).inspect()
    return inspected


def test_runs_v2_pinned_by_digest(host: Any, container: dict[str, Any], images: dict[str, Any]) -> None:
    assert host.docker(NAME).is_running
    assert container["Config"]["Image"] == images["v2"]["pinned"]
    image = json.loads(host.check_output("docker image inspect %s", container["Image"]))[0]
    assert images["v2"]["pinned"] in image["RepoDigests"]


def test_restart_policy_and_log_rotation_as_declared(container: dict[str, Any]) -> None:
    assert container["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 4}
    assert container["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "5m", "max-file": "2"}}


def test_volume_is_mounted_and_kept_the_data_written_under_v1(host: Any, container: dict[str, Any]) -> None:
    assert [(m["Type"], m.get("Name"), m["Destination"]) for m in container["Mounts"]] == [("volume", VOLUME, "/data")]
    assert host.check_output("docker exec %s cat /data/marker", NAME) == "kept-across-updates"


def test_audit_log_records_both_deploys(host: Any, images: dict[str, Any]) -> None:
    lines = host.file("/tmp/ro-molecule-local/audit.jsonl").content_string.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["result"], e["services"][0]["old"], e["services"][0]["new"]) for e in entries] == [
        ("updated", None, images["v1"]["pinned"]),
        ("updated", images["v1"]["pinned"], images["v2"]["pinned"]),
    ]
    assert not host.file("/tmp/ro-molecule-local/deploy.lock").exists
