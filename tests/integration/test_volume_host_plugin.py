"""The lab's volume plugin on this machine's own engine (a managed plugin, ``dockhand-lab-host:latest``).

The nodes run the same plugin as a legacy one (``dockhand-lab``); here it is a managed (v2) plugin, the kind users
install with ``docker plugin install``: the Engine reports its volumes' driver as ``NAME:latest`` however the volume
was named, and its info does not list it among the volume drivers. Assertions read this machine's engine and the
plugin's own directory on this machine.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
from conftest import LabState
from module_runner import remove_service_objects, run_module
from test_volume_backup import MAKE_TREE, in_volume, listing

pytestmark = pytest.mark.lab

PREFIX = "hp%s" % uuid.uuid4().hex[:4]


@pytest.fixture(scope="module")
def host(lab: LabState) -> Iterator[tuple[docker.DockerClient, str]]:
    """This machine's engine, with the lab's tool image pulled (the helper and probe containers run it)."""
    if not lab.host_volume_driver:
        pytest.fail("the lab has no volume plugin on this engine: run tests/lab/lab.py up")
    client = docker.DockerClient(base_url=lab.local_docker_host)
    image = lab.images["tool"].pinned
    client.images.pull(image, auth_config={"username": lab.registry_username, "password": lab.registry_password})
    remove_service_objects(client, PREFIX, with_users=True)
    yield client, image
    remove_service_objects(client, PREFIX, with_users=True)
    client.close()


def test_managed_plugin_volume_passes_options_through_is_idempotent_and_keeps_data_in_the_plugin(
        lab: LabState, host: tuple[docker.DockerClient, str]) -> None:
    client, image = host
    name = PREFIX + "-data"
    args = dict(name=name, driver="dockhand-lab-host", driver_options={"size": "1g", "anything": True},
                labels={"app": "x"}, docker_host=lab.local_docker_host)
    created = run_module("volume", args).assert_ok()
    assert created.changed
    on_engine = client.volumes.get(name).attrs
    assert on_engine["Driver"] == lab.host_volume_driver == "dockhand-lab-host:latest"
    assert (on_engine["Options"], on_engine["Labels"]) == ({"size": "1g", "anything": "true"}, {"app": "x"})
    assert created["volume"]["data_on_host"] is False

    again = run_module("volume", args).assert_ok()
    assert not again.changed, again.describe()  # "dockhand-lab-host" is the engine's "dockhand-lab-host:latest"

    in_volume(client, image, name, "echo through-the-managed-plugin > /v/note")
    assert (Path(lab.host_volume_data) / name / "note").read_text() == "through-the-managed-plugin\n"


def test_unknown_driver_names_the_managed_plugin_among_the_drivers(
        lab: LabState, host: tuple[docker.DockerClient, str]) -> None:
    client, _image = host
    name = PREFIX + "-none"
    refused = run_module("volume", dict(name=name, driver="no-such-plugin",
                                        docker_host=lab.local_docker_host)).assert_failed()
    assert "has no volume driver 'no-such-plugin'" in refused.msg, refused.describe()
    assert "local" in refused.msg and "dockhand-lab-host:latest" in refused.msg, refused.describe()
    with pytest.raises(docker.errors.NotFound):
        client.volumes.get(name)


def test_backup_and_restore_of_a_managed_plugin_volume_go_through_the_engine_and_keep_every_file(
        lab: LabState, host: tuple[docker.DockerClient, str], tmp_path: Path) -> None:
    client, image = host
    name = PREFIX + "-tree"
    client.volumes.create(name, driver="dockhand-lab-host")
    in_volume(client, image, name, MAKE_TREE)
    original = listing(client, image, name)

    made = run_module("volume_backup", dict(volume=name, dest=str(tmp_path), helper_image=image,
                                            docker_host=lab.local_docker_host)).assert_ok()
    assert made["data_path"] == "engine"
    manifest = json.loads(Path(made["path"] + ".json").read_text())
    assert manifest["driver"] == "dockhand-lab-host:latest" and manifest["files"] == original.count("\n./")

    copy = name + "-copy"
    restored = run_module("volume_restore", dict(path=made["path"], volume=copy, helper_image=image,
                                                 docker_host=lab.local_docker_host)).assert_ok()
    assert restored["created"] and restored["data_path"] == "engine"
    assert client.volumes.get(copy).attrs["Driver"] == "dockhand-lab-host:latest"
    assert listing(client, image, copy) == original
    assert (Path(lab.host_volume_data) / copy / "app" / "conf" / "app.ini").read_text() == "setting=1\n"
