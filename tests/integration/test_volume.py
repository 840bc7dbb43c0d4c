"""Scenarios: named volumes on their own - local and plugin driver (the lab's ``dockhand-lab``), check and diff mode,
idempotence; what is refused (bad options, an unknown driver, an nfs volume the host cannot mount, a removal while
containers use it or while it holds data, a change of driver options) leaves the engine and the data as they were;
volume_info reports what the engine and the files say; data written by a service survives recreation, an update by
digest, ``docker restart`` and a restart of the node's Docker Engine.

The modules run on this machine against lab node2's engine (docker_host), except one play over SSH on the node
itself. Assertions read the node's engine and the files inside the node (``docker exec`` into the node container).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import LabState, Node, RunPlaybook
from labstate import VOLUME_PLUGIN
from module_runner import (
    ModuleResult, Service, container_names, exec_text, owned_by, poll, run_module, served_version,
)

pytestmark = pytest.mark.lab
NODE_INDEX = 1  # the lab node this module works on (see the node fixture)


class Volumes:
    """The volumes (and containers) one test owns: everything named ``prefix`` or ``prefix-...`` on node2."""

    def __init__(self, prefix: str, node: Node, engine: Any, outer: docker.DockerClient) -> None:
        self.prefix = prefix
        self.node = node
        self.engine = engine
        self.outer = outer

    def name(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    def run(self, module: str = "volume", *, check: bool = False, diff: bool = False, **args: Any) -> ModuleResult:
        return run_module(module, dict(args, docker_host=self.node.docker_host), check=check, diff=diff)

    def inspect(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.engine.api.inspect_volume(name))
        except docker.errors.NotFound:
            return None

    def sh(self, command: str) -> str:
        """A shell command inside the node itself (its filesystem, where the volumes' data lives)."""
        code, output = self.outer.containers.get(self.node.container).exec_run(["sh", "-c", command])
        text = str(output.decode(errors="replace"))
        assert code == 0, f"`{command}` in {self.node.container} exited {code}: {text}"
        return text

    def write(self, name: str, files: dict[str, str]) -> None:
        where = self.inspect(name)
        assert where is not None, f"volume {name} missing"
        for path, content in files.items():
            self.sh(f"mkdir -p \"$(dirname '{where['Mountpoint']}/{path}')\" && printf %s '{content}' > "
                    f"'{where['Mountpoint']}/{path}'")

    def listing(self, name: str) -> str:
        """Every entry of the volume with its type, mode and (for files) checksum, read inside the node."""
        where = self.inspect(name)
        assert where is not None, f"volume {name} missing"
        return self.sh(f"cd '{where['Mountpoint']}' && find . -mindepth 1 | sort | while read -r p; do "
                       f"stat -c '%n %F %a %s %Y %u:%g %N' \"$p\"; [ -f \"$p\" ] && sha256sum \"$p\"; done; true")

    def helpers_left(self) -> list[str]:
        """Helper containers still mounting one of this test's volumes (other tests' helpers may come and go)."""
        helpers = self.engine.api.containers(all=True, filters={"label": "dockhand.containers.volume-helper"})
        return [h["Names"][0] for h in helpers
                if any(owned_by(m.get("Name") or "", self.prefix) for m in h.get("Mounts") or [])]

    def cleanup(self) -> None:
        remove_objects(self.engine, self.prefix)


def remove_objects(client: docker.DockerClient, prefix: str) -> None:
    """Remove the containers and volumes named ``prefix`` or ``prefix-...``; summaries only, so containers that
    other tests remove meanwhile on the same engine cannot break the clean-up."""
    for summary in client.api.containers(all=True, filters={"name": prefix}):
        if any(owned_by(name.lstrip("/"), prefix) for name in summary.get("Names") or []):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(summary["Id"], force=True)
    for volume in client.api.volumes(filters={"name": prefix}).get("Volumes") or []:
        if owned_by(volume["Name"], prefix):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_volume(volume["Name"], force=True)


@pytest.fixture
def outer() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
def vols(node: Node, engine: Any, outer: docker.DockerClient, request: pytest.FixtureRequest) -> Iterator[Volumes]:
    prefix = "vo-" + request.node.originalname.removeprefix("test_").split("_")[0]
    made = Volumes(prefix, node, engine, outer)
    made.cleanup()
    yield made
    made.cleanup()


def user_container(lab: LabState, vols: Volumes, name: str, volume: str, start: bool) -> Any:
    """A plain container (not a service) of the v1 app that mounts ``volume`` at /data."""
    service = Service(name, vols.node.docker_host, vols.engine, image=lab.images["v1"].pinned,
                      volumes=[f"{volume}:/data"], registry_username=lab.registry_username,
                      registry_password=lab.registry_password)
    service.run(state="started" if start else "present").assert_ok()
    return service.container()


def test_local_create_check_mode_diff_idempotence_and_labels(vols: Volumes) -> None:
    name = vols.name("data")
    args: dict[str, Any] = dict(name=name, labels={"backup": "nightly", "tier": 1})
    predicted = vols.run(check=True, diff=True, **args).assert_ok()
    assert predicted.changed and predicted["actions"] == ["create"]
    after = {"name": name, "driver": "local", "driver_options": {}, "labels": {"backup": "nightly", "tier": "1"}}
    assert predicted["diff"] == {"before": {}, "after": after}
    assert vols.inspect(name) is None, "check mode created the volume"

    created = vols.run(diff=True, **args).assert_ok()
    assert created.changed and created["diff"] == predicted["diff"]
    on_engine = vols.inspect(name)
    assert on_engine is not None and on_engine["Driver"] == "local"
    assert on_engine["Labels"] == {"backup": "nightly", "tier": "1"}
    assert created["volume"]["mountpoint"] == on_engine["Mountpoint"]
    assert created["volume"]["data_on_host"] is True and created["volume"]["files"] == 0

    again = vols.run(diff=True, **args).assert_ok()
    assert not again.changed and again["actions"] == []
    assert vols.inspect(name) == on_engine
    only_named = vols.run(name=name, diff=True).assert_ok()
    assert not only_named.changed and only_named["diff"]["after"] == after
    assert vols.inspect(name) == on_engine


def test_plugin_driver_options_pass_through_and_data_lives_in_the_plugins_directory(lab: LabState, vols: Volumes) -> None:
    name = vols.name("data")
    args: dict[str, Any] = dict(name=name, driver=VOLUME_PLUGIN, driver_options={"size": "1g", "anything": True}, labels={"app": "x"})
    created = vols.run(**args).assert_ok()
    on_engine = vols.inspect(name)
    assert on_engine is not None
    assert on_engine["Driver"] == VOLUME_PLUGIN
    assert on_engine["Options"] == {"size": "1g", "anything": "true"}
    assert on_engine["Labels"] == {"app": "x"}
    assert on_engine["Mountpoint"] == f"/var/lib/docker/dockhand-lab-plugin/volumes/{name}"
    assert created["volume"]["data_on_host"] is False and created["volume"]["bytes"] is None
    assert not vols.run(**args).assert_ok().changed

    app = user_container(lab, vols, vols.name("app"), name, start=True)
    exec_text(app, "echo through-the-plugin > /data/note")
    assert vols.sh(f"cat {on_engine['Mountpoint']}/note").strip() == "through-the-plugin"
    info = vols.run("volume_info", name=[name]).assert_ok()
    assert [v["users"] for v in info["volumes"]] == [[{"name": app.name, "id": app.id, "running": True}]]


def test_unknown_driver_fails_listing_the_engines_drivers_and_creates_nothing(vols: Volumes) -> None:
    name = vols.name("data")
    refused = vols.run(name=name, driver="no-such-plugin").assert_failed()
    assert "has no volume driver 'no-such-plugin'" in refused.msg, refused.describe()
    assert "local" in refused.msg and VOLUME_PLUGIN in refused.msg, refused.describe()
    assert vols.inspect(name) is None


@pytest.mark.parametrize("options, fix", [
    ({"type": "none", "device": "/srv"}, "only with o: bind"),
    ({"type": "nfs", "o": "nolock", "device": ":/export"}, "needs o: addr=<server>"),
    ({"device": "/srv"}, "need a type"),
    ({"sizes": "1"}, "sizes are not options of the local driver"),
])
def test_bad_local_options_name_the_fix_and_create_nothing(vols: Volumes, options: dict[str, str], fix: str) -> None:
    name = vols.name("data")
    refused = vols.run(name=name, driver_options=options).assert_failed()
    assert fix in refused.msg and name in refused.msg, refused.describe()
    assert vols.inspect(name) is None


def test_nfs_and_a_missing_bind_source_fail_at_once_with_the_mount_error_and_leave_nothing(vols: Volumes) -> None:
    # This kernel has no NFS client (no "nfs" in /proc/filesystems), so no NFS server can be mounted in the lab:
    # what is tested is that the module mounts the new volume once, reports why it cannot and removes it again.
    nfs = vols.name("nfs")
    refused = vols.run(name=nfs, driver_options={"type": "nfs", "o": "addr=172.30.213.1,nfsvers=4",
                                                 "device": ":/export"}).assert_failed()
    assert "cannot mount it" in refused.msg and "removed again" in refused.msg, refused.describe()
    assert "failed to mount local volume" in refused.msg, refused.describe()
    bind = vols.name("bind")
    refused = vols.run(name=bind, driver_options={"type": "none", "o": "bind", "device": "/no/such/dir"}).assert_failed()
    assert "no such file or directory" in refused.msg, refused.describe()
    assert vols.inspect(nfs) is None and vols.inspect(bind) is None
    assert vols.helpers_left() == []


def test_removal_is_refused_while_containers_use_it_even_with_force_and_the_data_stays(lab: LabState, vols: Volumes) -> None:
    name = vols.name("data")
    vols.run(name=name).assert_ok()
    vols.write(name, {"keep.txt": "precious", "sub/dir/file": "more"})
    before = vols.listing(name)
    running = user_container(lab, vols, vols.name("web"), name, start=True)
    stopped = user_container(lab, vols, vols.name("job"), name, start=False)
    assert stopped.status == "created"

    for force in (False, True):
        refused = vols.run(name=name, state="absent", force=force).assert_failed()
        assert f"{running.name} (running)" in refused.msg and f"{stopped.name} (stopped)" in refused.msg, refused.describe()
    migrate = vols.run(name=name, labels={"new": "x"}, recreate="migrate", backup_dir="/tmp/vo-never-used").assert_failed()
    assert "needs the volume unused" in migrate.msg and f"{stopped.name} (stopped)" in migrate.msg, migrate.describe()
    assert vols.inspect(name) is not None
    assert vols.listing(name) == before
    assert exec_text(running, "cat /data/keep.txt") == "precious"

    info = vols.run("volume_info", name=[name]).assert_ok()
    users = info["volumes"][0]["users"]
    assert users == [{"name": stopped.name, "id": stopped.id, "running": False},
                     {"name": running.name, "id": running.id, "running": True}]


@pytest.mark.parametrize("driver", ["local", VOLUME_PLUGIN])
def test_removal_of_a_volume_holding_data_needs_force(vols: Volumes, driver: str) -> None:
    name = vols.name("data")
    vols.run(name=name, driver=driver).assert_ok()
    vols.write(name, {".hidden": "x"})
    before = vols.listing(name)

    predicted = vols.run(name=name, state="absent", check=True).assert_failed()
    refused = vols.run(name=name, state="absent").assert_failed()
    for result in (predicted, refused):
        assert "holds data" in result.msg and "force: true" in result.msg, result.describe()
    if driver == "local":
        assert "(1 files, 1 bytes)" in refused.msg, refused.describe()
    assert vols.listing(name) == before
    assert vols.helpers_left() == []

    assert vols.run(name=name, state="absent", force=True, check=True).assert_ok().changed
    assert vols.inspect(name) is not None
    removed = vols.run(name=name, state="absent", force=True, diff=True).assert_ok()
    assert removed["actions"] == ["remove"] and removed["diff"]["after"] == {}
    assert vols.inspect(name) is None
    assert not vols.run(name=name, state="absent").assert_ok().changed


@pytest.mark.parametrize("driver", ["local", VOLUME_PLUGIN])
def test_an_empty_unused_volume_is_removed_without_force(vols: Volumes, driver: str) -> None:
    name = vols.name("data")
    vols.run(name=name, driver=driver).assert_ok()
    assert vols.run(name=name, state="absent").assert_ok()["actions"] == ["remove"]
    assert vols.inspect(name) is None
    assert vols.helpers_left() == []


def test_changed_driver_options_or_labels_are_refused_without_migrate_and_the_data_stays(vols: Volumes) -> None:
    name = vols.name("data")
    vols.run(name=name, driver=VOLUME_PLUGIN, driver_options={"size": "1g"}).assert_ok()
    vols.write(name, {"db/table": "rows"})
    before, settings = vols.listing(name), vols.inspect(name)

    changes: list[dict[str, Any]] = [{"driver_options": {"size": "2g"}}, {"labels": {"new": "label"}},
                                     {"driver": "local", "driver_options": {}}]
    for change in changes:
        args = dict(dict(name=name, driver=VOLUME_PLUGIN, driver_options={"size": "1g"}), **change)
        refused = vols.run(**args).assert_failed()
        assert "cannot change them in place" in refused.msg and "recreate: migrate" in refused.msg, refused.describe()
    assert "driver_options {'size': '1g'} -> {'size': '2g'}" in vols.run(
        name=name, driver=VOLUME_PLUGIN, driver_options={"size": "2g"}, check=True).assert_failed().msg
    assert vols.inspect(name) == settings
    assert vols.listing(name) == before


def test_migrate_gives_new_settings_with_identical_data_and_deletes_its_backup(vols: Volumes, tmp_path: Any) -> None:
    name = vols.name("data")
    vols.run(name=name, driver=VOLUME_PLUGIN, driver_options={"size": "1g"}).assert_ok()
    vols.write(name, {"db/table": "rows", "db/index": "idx", "top": "x"})
    where = vols.inspect(name)["Mountpoint"]  # type: ignore[index]
    vols.sh(f"cd '{where}' && chmod 0640 db/table && chown 1000:1000 db/index && ln -s db/table link && "
            "mkdir empty && touch -d '2020-01-02 03:04:05' top")
    before = vols.listing(name)
    backups = tmp_path / "backups"
    new_settings: dict[str, Any] = dict(name=name, driver="local", labels={"moved": "yes"}, recreate="migrate", backup_dir=str(backups))

    bad = vols.run(**dict(new_settings, driver_options={"type": "none", "o": "bind", "device": "/no/such/dir"}))
    assert "stopped before changing anything" in bad.assert_failed().msg, bad.describe()
    assert vols.inspect(name)["Driver"] == VOLUME_PLUGIN and vols.listing(name) == before  # type: ignore[index]
    assert not backups.exists() or not any(backups.iterdir())

    predicted = vols.run(check=True, **new_settings).assert_ok()
    assert predicted["actions"] == ["migrate"] and vols.inspect(name)["Driver"] == VOLUME_PLUGIN  # type: ignore[index]
    migrated = vols.run(diff=True, **new_settings).assert_ok()
    assert migrated["actions"] == ["migrate"] and migrated["migrated"]["files"] == 6, migrated.describe()
    assert migrated["diff"]["before"]["driver"] == VOLUME_PLUGIN and migrated["diff"]["after"]["driver"] == "local"
    after = vols.inspect(name)
    assert after is not None and after["Driver"] == "local" and after["Labels"] == {"moved": "yes"}
    assert vols.listing(name) == before
    assert list(backups.iterdir()) == [], "the verified backup was not deleted"
    assert not vols.run(**new_settings).assert_ok().changed
    assert vols.helpers_left() == []


def test_volume_info_filters_by_name_label_and_driver_and_counts_the_files(vols: Volumes, tmp_path: Any) -> None:
    local, plugin = vols.name("local"), vols.name("plugin")
    vols.run(name=local, labels={"vo-test": "info", "kind": "local"}).assert_ok()
    vols.run(name=plugin, driver=VOLUME_PLUGIN, labels={"vo-test": "info"}).assert_ok()
    vols.write(local, {"a": "12345", "d/b": "123"})
    vols.sh(f"ln -s a '{vols.inspect(local)['Mountpoint']}/link'")  # type: ignore[index]

    by_label = vols.run("volume_info", labels=["vo-test=info"]).assert_ok()
    assert [v["name"] for v in by_label["volumes"]] == [local, plugin]
    first = by_label["volumes"][0]
    assert (first["bytes"], first["files"], first["data_on_host"]) == (8, 3, True)
    assert first["labels"] == vols.inspect(local)["Labels"]  # type: ignore[index]
    assert by_label["volumes"][1]["bytes"] is None and by_label["volumes"][1]["driver"] == VOLUME_PLUGIN

    both = vols.run("volume_info", labels=["vo-test", "kind=local"]).assert_ok()
    assert [v["name"] for v in both["volumes"]] == [local]
    by_driver = vols.run("volume_info", driver=VOLUME_PLUGIN, labels=["vo-test"]).assert_ok()
    assert [v["name"] for v in by_driver["volumes"]] == [plugin]
    named = vols.run("volume_info", name=[plugin, vols.name("absent")], stats=False, check=True).assert_ok()
    assert [v["name"] for v in named["volumes"]] == [plugin] and named["missing"] == [vols.name("absent")]
    assert not named.changed

    backups = tmp_path / "backups"
    archives = [vols.run("volume_backup", volume=local, dest=str(backups)).assert_ok()["path"] for _run in range(2)]
    with_backups = vols.run("volume_info", labels=["vo-test=info"], backup_dir=str(backups)).assert_ok()
    newest = with_backups["volumes"][0]["backup"]
    assert newest["path"] == archives[1] and newest["files"] == 4
    assert newest["sha256"] == hashlib.sha256(Path(archives[1]).read_bytes()).hexdigest()
    assert with_backups["volumes"][1]["backup"] is None


def test_over_ssh_on_the_node_itself(lab: LabState, vols: Volumes, run_playbook: RunPlaybook) -> None:
    name = vols.name("data")
    play = f"""
- hosts: {vols.node.name}
  gather_facts: false
  tasks:
    - name: Create the volume
      dockhand.containers.volume:
        name: {name}
    - name: Put a file in it
      ansible.builtin.copy:
        dest: /var/lib/docker/volumes/{name}/_data/f
        content: "12345"
        mode: "0600"
    - name: Try to remove it
      dockhand.containers.volume:
        name: {name}
        state: absent
      register: refused
      ignore_errors: true
    - name: Read it
      dockhand.containers.volume_info:
        name: [{name}]
      register: info
"""
    result = run_playbook(play, limit=vols.node.name)
    assert result.rc == 0, result.describe()
    assert "holds data (1 files, 5 bytes)" in result.task("Try to remove it")["msg"]
    volume = result.task("Read it")["volumes"][0]
    assert (volume["bytes"], volume["files"], volume["data_on_host"]) == (5, 1, True)
    assert vols.listing(name).startswith("./f regular file 600 5")


def test_over_ssh_on_node3_with_debians_docker_sdk_a_plugin_volume_is_looked_into_through_the_engine(
        lab: LabState, run_playbook: RunPlaybook) -> None:
    node3 = lab.nodes[2]
    name = "vo-sdk5-data"
    play = f"""
- hosts: {node3.name}
  gather_facts: false
  tasks:
    - name: Create the plugin volume
      dockhand.containers.volume:
        name: {name}
        driver: {VOLUME_PLUGIN}
    - name: Put a file in it
      ansible.builtin.copy:
        dest: /var/lib/docker/dockhand-lab-plugin/volumes/{name}/f
        content: "x"
        mode: "0600"
    - name: Try to remove it
      dockhand.containers.volume:
        name: {name}
        state: absent
      register: refused
      ignore_errors: true
    - name: Read it
      dockhand.containers.volume_info:
        name: [{name}]
      register: info
"""
    client = node3.client()
    try:
        result = run_playbook(play, limit=node3.name)
        assert result.rc == 0, result.describe()
        assert "holds data" in result.task("Try to remove it")["msg"]
        volume = client.volumes.get(name)
        assert volume.attrs["Driver"] == VOLUME_PLUGIN
        assert [v["driver"] for v in result.task("Read it")["volumes"]] == [VOLUME_PLUGIN]
        helpers = client.api.containers(all=True, filters={"label": "dockhand.containers.volume-helper"})
        assert [h["Names"] for h in helpers if any(m.get("Name") == name for m in h.get("Mounts") or [])] == []
    finally:
        remove_objects(client, name)
        client.close()


def test_service_data_survives_recreate_digest_update_docker_restart_and_an_engine_restart(
        lab: LabState, vols: Volumes, outer: docker.DockerClient) -> None:
    local, plugin = vols.name("data"), vols.name("plugin")
    vols.run(name=plugin, driver=VOLUME_PLUGIN).assert_ok()
    service = Service(vols.name("app"), vols.node.docker_host, vols.engine, image=lab.images["v1"].pinned,
                      volumes=[f"{local}:/data", f"{plugin}:/plugin"], restart_policy="unless-stopped",
                      registry_username=lab.registry_username, registry_password=lab.registry_password)
    service.run().assert_ok()
    write = "for d in /data /plugin; do mkdir -p $d/sub && echo v1 > $d/sub/f && " \
            "dd if=/dev/urandom of=$d/blob bs=1k count=64 2>/dev/null; done"
    exec_text(service.container(), write)
    expected = (vols.listing(local), vols.listing(plugin))
    assert "./blob regular file" in expected[0] and "./blob regular file" in expected[1]

    def data_is_intact(stage: str) -> None:
        assert (vols.listing(local), vols.listing(plugin)) == expected, f"data changed after {stage}"
        assert exec_text(service.container(), "cat /data/sub/f /plugin/sub/f") == "v1\nv1\n", stage

    first_id = service.container().id
    recreated = service.run(env={"MODE": "recreated"}).assert_ok()
    assert recreated["actions"] == ["recreate"] and service.container().id != first_id
    data_is_intact("a recreation")

    updated = service.run(env={"MODE": "recreated"}, image=lab.images["v2"].pinned).assert_ok()
    assert updated["digest"] == lab.images["v2"].digest and served_version(service.container()) == "v2"
    data_is_intact("an update by digest")

    started = service.container().attrs["State"]["StartedAt"]
    service.container().restart(timeout=5)
    assert service.container().attrs["State"]["StartedAt"] != started
    data_is_intact("docker restart")

    # The node's engine restarts with its container (dockerd, and the plugin, are the node's processes).
    node = outer.containers.get(vols.node.container)
    engine_started = node.attrs["State"]["StartedAt"]
    node.restart(timeout=20)
    node.reload()
    assert node.attrs["State"]["StartedAt"] != engine_started
    poll("node2's engine answers and the service runs again", lambda: _running(vols.node, service.name), 90)
    vols.engine = service.client = vols.node.client()  # the old client's connections died with the engine
    data_is_intact("a restart of the node's Docker Engine")
    assert container_names(vols.engine, service.name) == {service.name}


def _running(node: Node, name: str) -> bool:
    try:
        client = node.client(timeout=5)
    except docker.errors.DockerException:  # the engine is still starting: not yet
        return False
    try:
        return bool(client.containers.get(name).attrs["State"]["Running"])
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()
