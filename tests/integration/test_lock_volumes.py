"""The per-service lock leaves nothing on the engine, also for an image that declares a VOLUME.

The lock is a never-started container made from the service's own image (``_lock.py``). An image with ``VOLUME``
gives every container made from it an anonymous volume, so each lock taken once left an empty, unnamed volume
behind until the lock's removal asked the Engine to remove its anonymous volumes too. The image is built here
(``FROM`` the lab's v1 plus ``VOLUME /cache``), pushed to the lab registry so its digest is real, and deployed
on node2; the assertions read node2's volume list.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from conftest import LabState, Node
from module_runner import Service, container_names

pytestmark = pytest.mark.lab
NODE_INDEX = 1

NAME = "lv-cache"
ANONYMOUS = re.compile("[0-9a-f]{64}")


@pytest.fixture(scope="module")
def volume_image(lab: LabState) -> Iterator[str]:
    """``<registry>/dockhand/lv-volume-image@sha256:…``: the v1 app with an anonymous volume at /cache."""
    outer = docker.from_env()
    repo = f"{lab.registry}/dockhand/lv-volume-image"
    dockerfile = f"FROM {lab.images['v1'].pinned}\nVOLUME /cache\n".encode()
    image, _log = outer.images.build(fileobj=io.BytesIO(dockerfile), tag=f"{repo}:t", rm=True,
                                     labels={"dockhand.lab": "1"})
    auth = {"username": lab.registry_username, "password": lab.registry_password}
    outer.images.push(repo, tag="t", auth_config=auth)
    image.reload()
    pinned = [d for d in image.attrs["RepoDigests"] if d.startswith(repo + "@")]
    assert len(pinned) == 1, image.attrs["RepoDigests"]
    yield pinned[0]
    outer.images.remove(image.id, force=True)
    outer.close()


def _unused_volumes(engine: Any) -> set[str]:
    """Anonymous volumes no container uses (the Engine names them with 64 hex digits; named ones are others')."""
    return {v.name for v in engine.volumes.list(filters={"dangling": True}) if ANONYMOUS.fullmatch(v.name)}


@pytest.fixture
def service(lab: LabState, node: Node, engine: Any, volume_image: str) -> Iterator[tuple[Service, set[str]]]:
    """The service, and the engine's unused volumes before the test (other tests' volumes are not ours)."""
    made = Service(NAME, node.docker_host, engine, image=volume_image, stop_timeout=1, wait_timeout=30,
                   registry_username=lab.registry_username, registry_password=lab.registry_password)
    made.cleanup()
    before = _unused_volumes(engine)
    yield made, before
    for container in engine.containers.list(all=True, ignore_removed=True):
        if container.name == NAME or container.name.startswith(NAME + "-"):
            container.remove(v=True, force=True)
    for name in _unused_volumes(engine) - before:
        engine.volumes.get(name).remove(force=True)


def test_taking_and_releasing_the_lock_leaves_no_anonymous_volume(
        engine: Any, service: tuple[Service, set[str]]) -> None:
    svc, before = service
    svc.run().assert_ok()                      # create: lock taken and released
    first = _cache_volume(svc.container())
    svc.run(env={"ROUND": "2"}).assert_ok()    # replace: lock taken and released again
    assert svc.run(env={"ROUND": "2"}).assert_ok().changed is False
    assert container_names(engine, NAME) == {NAME}, "no lock container is left"
    assert _cache_volume(svc.container()) != first
    # A replaced container's anonymous volume stays, by design (docs/volumes.md, rule 4): the only one left over.
    left = _unused_volumes(engine) - before
    assert left == {first}, f"volumes no container uses besides the replaced container's {first}: {sorted(left)}"


def _cache_volume(container: Any) -> str:
    names = [m["Name"] for m in container.attrs["Mounts"] if m.get("Destination") == "/cache"]
    assert len(names) == 1, container.attrs["Mounts"]
    return str(names[0])
