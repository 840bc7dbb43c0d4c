"""Scenario: playbooks/move_service.yml moves a service and its volume from one node to another over SSH.

The moves run between two spare nodes made for each module (``spare1`` the source, ``spare2`` the target;
tests/lab/lab.py ``up_spares``) and an inventory of their own: a move stops, starts and streams between two engines,
and on spare nodes it runs beside the passes of the shared nodes (``LAB_GROUP = "spare"``) instead of alone after them.

A volume of the same name already holding other data on the target stops the move before anything changes (the
service runs on the source with its data, the target's volume keeps its data); the move then succeeds over the stream
path with remove_source, and the target runs the same digest with an identical listing of the volume (read on both
engines) while the source keeps nothing. The archives path (move_service_transfer: archives, the fallback for other
connections and volumes not on the host's filesystem) moves the same way.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import LAB_PY, LabState, Node, RunPlaybook
from module_runner import remove_service_objects, run_module
from test_volume_backup import in_volume, listing, tool_image

sys.path.insert(0, str(LAB_PY.parent))
from lab import Lab  # noqa: E402

LAB_GROUP = "spare"

# Per run (a concurrent run of this file must not touch this one's objects), port from this suite's range.
TOKEN = uuid.uuid4()
NAME = "ar-mv%s" % TOKEN.hex[:4]
PORT = 19251 + TOKEN.int % 40
VOLUME = NAME + "-data"
PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "move_service.yml"


@dataclass(frozen=True)
class Spares:
    """The module's two spare nodes and an inventory naming them (the playbook's ``move_service_from``/``_to``)."""
    source: Node
    target: Node
    inventory: Path


@contextlib.contextmanager
def spare_pair(lab: LabState, directory: Path) -> Iterator[Spares]:
    """Two fresh spare nodes (empty engines, the lab's node image) and their inventory; removed afterwards."""
    spare_lab = Lab(lab.dir)
    made = spare_lab.up_spares(2)
    try:
        yield Spares(made.nodes[0], made.nodes[1], made.write_inventory(lab.ssh_private_key, directory / "hosts.yml"))
    finally:
        spare_lab.down_spares()


@contextlib.contextmanager
def node_pair(lab: LabState, spares: Spares,
              prefix: str) -> Iterator[tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]]:
    """The source and the target, their clients and the tool image on both; every object named ``prefix`` or
    ``prefix-...`` (and any container mounting such a volume) is removed on both before and after."""
    source, target = spares.source, spares.target
    a, b = source.client(), target.client()
    image = tool_image(lab, source)
    tool_image(lab, target)
    try:
        for client in (a, b):
            remove_service_objects(client, prefix, with_users=True)
        yield source, target, a, b, image
    finally:
        for client in (a, b):
            remove_service_objects(client, prefix, with_users=True)
            client.close()


@pytest.fixture(scope="module")
def spares(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spares]:
    with spare_pair(lab, tmp_path_factory.mktemp("mv-spares")) as made:
        yield made


@pytest.fixture
def pair(lab: LabState, spares: Spares) -> Iterator[tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]]:
    with node_pair(lab, spares, NAME) as made:
        yield made


def test_move_service_fails_safely_then_moves_with_its_data(
        lab: LabState, run_playbook: RunPlaybook, tmp_path: Path,
        spares: Spares, pair: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]) -> None:
    source, target, a, b, image = pair
    # The credentials travel in the spec: the target pulls the image when the service starts there.
    spec: dict[str, Any] = dict(name=NAME, image=lab.images["v1"].pinned, volumes=[VOLUME + ":/data"],
                                ports=["%d:8080" % PORT], registry_username=lab.registry_username,
                                registry_password=lab.registry_password)
    run_module("service", dict(spec, docker_host=source.docker_host)).assert_ok()
    in_volume(a, image, VOLUME, "mkdir -p /v/db && head -c 100000 /dev/urandom > /v/db/blob && "
                                "echo v1 > /v/db/version && ln -s db/version /v/current && "
                                "for i in $(seq 1 8); do echo $i > /v/db/f$i; done && chown -R 70:70 /v/db")
    before = listing(a, image, VOLUME)
    extra = dict(move_service_from=source.name, move_service_to=target.name, move_service_spec=spec,
                 move_service_controller_dir=str(tmp_path / "controller"))

    # The target already has a volume of that name with other data: refused before anything changes, the source runs on.
    b.volumes.create(VOLUME)
    in_volume(b, image, VOLUME, "echo other > /v/other")
    failed = run_playbook(PLAYBOOK, inventory=spares.inventory, extra_vars=extra).assert_failed()
    assert "Nothing was changed: the service still runs on %s" % source.name in failed.stdout, failed.describe()
    assert a.containers.get(NAME).status == "running"
    assert listing(a, image, VOLUME) == before
    assert NAME not in [c.name for c in b.containers.list(all=True, ignore_removed=True)]
    assert in_volume(b, image, VOLUME, "cat /v/other").strip() == "other"
    b.volumes.get(VOLUME).remove()

    moved = run_playbook(PLAYBOOK, inventory=spares.inventory,
                         extra_vars=dict(extra, move_service_remove_source=True)).assert_ok()
    container = b.containers.get(NAME)
    assert container.status == "running" and container.attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert listing(b, image, VOLUME) == before
    assert b.volumes.get(VOLUME).attrs["Driver"] == "local"
    assert NAME not in [c.name for c in a.containers.list(all=True, ignore_removed=True)]
    assert VOLUME not in [v.name for v in a.volumes.list()]
    assert moved.task("Start the service on the target host and wait for it to be healthy", host=target.name)["changed"]
    assert "transfer path stream" in moved.stdout
    assert moved.task("Stream the final copy of each volume over the first one, verified on both ends",
                      host=target.name)


def test_move_service_over_archives_when_asked(
        lab: LabState, run_playbook: RunPlaybook, tmp_path: Path,
        spares: Spares, pair: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]) -> None:
    source, target, a, b, image = pair
    spec: dict[str, Any] = dict(name=NAME, image=lab.images["v1"].pinned, volumes=[VOLUME + ":/data"],
                                ports=["%d:8080" % PORT], registry_username=lab.registry_username,
                                registry_password=lab.registry_password)
    run_module("service", dict(spec, docker_host=source.docker_host)).assert_ok()
    in_volume(a, image, VOLUME, "mkdir -p /v/db && head -c 100000 /dev/urandom > /v/db/blob && "
                                "ln -s db/blob /v/current && for i in $(seq 1 10); do echo $i > /v/db/f$i; done")
    before = listing(a, image, VOLUME)
    moved = run_playbook(PLAYBOOK, inventory=spares.inventory, extra_vars=dict(
        move_service_from=source.name, move_service_to=target.name, move_service_spec=spec,
        move_service_transfer="archives",
        move_service_controller_dir=str(tmp_path / "controller"))).assert_ok()
    assert "transfer path archives" in moved.stdout
    assert moved.task("Restore each volume with its name, driver and options", host=target.name)["changed"]
    assert b.containers.get(NAME).status == "running"
    assert listing(b, image, VOLUME) == before
    assert a.containers.get(NAME).status == "exited" and listing(a, image, VOLUME) == before
