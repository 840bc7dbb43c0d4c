"""dockhand.containers.deploy_prepare against node2's engine: the lock, the plan, the pull, and what is left behind.

The module runs on this machine with ``docker_host`` set to node2's engine, so its lock file is a file of this test
(``tmp_path``); what it predicts, pulls and reads is checked against node2's engine itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from conftest import LabState, Node
from module_runner import clean_engine, run_module

pytestmark = pytest.mark.lab
NODE_INDEX = 1

STACK = "dp"
NAME = "dp-web"


@pytest.fixture
def node(lab: LabState) -> Iterator[tuple[Node, docker.DockerClient]]:
    target = lab.node("node2")
    with clean_engine(target, NAME) as client:
        yield target, client


def prepare_args(lab: LabState, target: Node, lock: Path, image: str, run_id: str = "run-a",
                 **more: Any) -> dict[str, Any]:
    return dict(name=STACK, services=[dict(name=NAME, image=image, wait="healthy")], lock_path=str(lock),
                run_id=run_id, holder="tester@ctl", docker_host=target.docker_host,
                registry_username=lab.registry_username, registry_password=lab.registry_password, **more)


def lock_file(lock: Path) -> dict[str, Any] | None:
    return json.loads(lock.read_text()) if lock.exists() else None


def has_image(client: docker.DockerClient, reference: str) -> bool:
    try:
        client.images.get(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_a_host_that_changes_stays_locked_with_its_images_pulled_and_one_that_does_not_is_released(
        lab: LabState, node: tuple[Node, docker.DockerClient], tmp_path: Path) -> None:
    target, client = node
    lock = tmp_path / "deploy.lock"
    v1 = lab.images["v1"].pinned
    missing_before = not has_image(client, v1)

    checked = run_module("deploy_prepare", prepare_args(lab, target, lock, v1), check=True).assert_ok()
    assert checked["needs_change"] is True and lock_file(lock) is None, "check mode wrote the lock"
    assert checked["pulled"] == ([v1] if missing_before else [])
    assert has_image(client, v1) is not missing_before, "check mode pulled"

    prepared = run_module("deploy_prepare", prepare_args(lab, target, lock, v1)).assert_ok()
    assert prepared["needs_change"] is True and prepared["locked"] is True
    assert prepared["running"] == [] and prepared["plan"]["summary"]["create"] == 1
    assert (lock_file(lock) or {}).get("run_id") == "run-a"
    assert has_image(client, v1), "the image the converge needs was not pulled"
    assert NAME not in [c.name for c in client.containers.list(all=True)], "prepare created the service"

    # The run converges and ends; the next run finds nothing to change and leaves no lock.
    run_module("stack", dict(name=STACK, services=[dict(name=NAME, image=v1, wait="healthy")],
                             docker_host=target.docker_host)).assert_ok()
    lock.unlink()
    again = run_module("deploy_prepare", prepare_args(lab, target, lock, v1, run_id="run-b")).assert_ok()
    assert again["needs_change"] is False and again["locked"] is False and again["changed"] is False
    assert lock_file(lock) is None, "the lock of a host needing no change was kept"
    [running] = again["running"]
    assert running["name"] == NAME and running["image"] == client.containers.get(NAME).attrs["Config"]["Image"] == v1


def test_another_runs_lock_refuses_and_a_failure_after_locking_releases_the_lock(
        lab: LabState, node: tuple[Node, docker.DockerClient], tmp_path: Path) -> None:
    target, client = node
    lock = tmp_path / "deploy.lock"
    v1 = lab.images["v1"].pinned
    run_module("deploy_lock", dict(path=str(lock), run_id="other", holder="bob@ctl2")).assert_ok()
    refused = run_module("deploy_prepare", prepare_args(lab, target, lock, v1)).assert_failed()
    assert "another deploy holds this host: bob@ctl2" in refused.msg, refused.msg
    assert (lock_file(lock) or {}).get("run_id") == "other", "the other run's lock was touched"
    lock.unlink()

    # A digest the registry does not have: the pull fails after the lock was taken, and the lock goes again.
    absent = lab.images["v1"].repo + "@sha256:" + "0" * 64
    failed = run_module("deploy_prepare", prepare_args(lab, target, lock, absent)).assert_failed()
    assert failed["lock_released"] is True and lock_file(lock) is None, failed.describe()
    assert NAME not in [c.name for c in client.containers.list(all=True)]

    # A tag to pin (pin: true) that the registry does not have: refused with the tag named, the lock released.
    args = prepare_args(lab, target, lock, lab.images["v1"].repo + ":no-such-tag")
    args["services"][0]["pin"] = True
    unknown = run_module("deploy_prepare", args).assert_failed()
    assert "no-such-tag" in unknown.msg and unknown["lock_released"] is True and lock_file(lock) is None, \
        unknown.describe()
    assert NAME not in [c.name for c in client.containers.list(all=True)]
