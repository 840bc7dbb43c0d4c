"""Backup and restore of volumes against the lab's engines: every assertion reads the engines and the files.

The modules run on this machine (as on a controller delegating to localhost) with ``docker_host`` pointing at a
node's engine, so one archive directory here serves a backup on node2 and a restore on node3. A local volume of a
node is read on the fast path (its data through the node engine's mount namespace), a ``dockhand-lab`` plugin
volume on the engine path (through a helper container).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import LabState, Node
from labstate import VOLUME_PLUGIN
from module_runner import ModuleResult, run_module

# Per run, so a second run of this file at the same time (another session) never removes this run's objects.
PREFIX = "ar-bk%s" % uuid.uuid4().hex[:4]
PLUGIN = VOLUME_PLUGIN

# A tree with what a restore must keep: content, modes, owners, sub-second mtimes, symlinks, a hard link, an empty
# directory, a root directory with its own owner and mode.
MAKE_TREE = """
set -e
cd /v
mkdir -p app/conf empty deep/a/b/c
head -c 300000 /dev/urandom > app/blob
echo 'setting=1' > app/conf/app.ini
printf 'line\\n%.0s' $(seq 1 500) > deep/a/b/c/log.txt
ln -s conf/app.ini app/current
ln -s ../../app/blob deep/a/blob-link
ln app/blob hard-blob
chown 1001:1002 app/blob app/conf
chown -h 33:33 app/current
chmod 0640 app/conf/app.ini
chmod 0750 app
chmod 1777 empty
touch -d '2021-05-06 07:08:09' app/conf/app.ini deep/a/b/c/log.txt
touch -d '2020-01-01 00:00:00' deep/a/b/c
chown 4321:4322 /v
chmod 0751 /v
"""

# One line per path: name, type, mode, owner, size, mtime, link target and a sha256 of regular files.
LISTING = """
cd /v && find . | sort | while read -r f; do
  stat -c '%n|%F|%a|%u:%g|%s|%Y|%N' "$f"
  if [ -f "$f" ] && [ ! -L "$f" ]; then sha256sum "$f" | cut -d' ' -f1; fi
done
"""


def tool_image(lab: LabState, node: Node) -> str:
    image = lab.images["tool"].pinned
    subprocess.run(["docker", "exec", node.container, "docker", "pull", "-q", image], check=True,
                   capture_output=True, timeout=120)
    return image


def in_volume(client: docker.DockerClient, image: str, volume: str, script: str) -> str:
    """Run a shell script in a throwaway container with the volume at /v; its output."""
    out = client.containers.run(image, ["sh", "-c", script], volumes={volume: {"bind": "/v", "mode": "rw"}},
                                remove=True, network_disabled=True)
    return out.decode()


def listing(client: docker.DockerClient, image: str, volume: str) -> str:
    text = in_volume(client, image, volume, LISTING)
    assert text.count("\n") > 10, text
    return text


def make_volume(client: docker.DockerClient, image: str, name: str, driver: str) -> None:
    client.volumes.create(name, driver=driver)
    in_volume(client, image, name, MAKE_TREE)


def cleanup(*clients: docker.DockerClient) -> None:
    """Remove our containers and volumes, and any container left mounting one of our volumes (a helper, or a
    throwaway probe an engine restart interrupted), which would pin the volume."""
    for client in clients:
        for container in client.containers.list(all=True, ignore_removed=True):
            mounts = [m.get("Name") or "" for m in container.attrs.get("Mounts") or []]
            if container.name.startswith(PREFIX) or any(m.startswith(PREFIX) for m in mounts):
                container.remove(force=True)
        for volume in client.volumes.list():
            if volume.name.startswith(PREFIX):
                try:
                    volume.remove(force=True)
                except docker.errors.NotFound:
                    pass  # the plugin listed it but had already let it go


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def nodes(lab: LabState) -> Iterator[tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]]:
    source, other = lab.node("node2"), lab.node("node3")
    client_a, client_b = source.client(), other.client()
    image = tool_image(lab, source)
    tool_image(lab, other)
    cleanup(client_a, client_b)
    yield source, other, client_a, client_b, image
    cleanup(client_a, client_b)
    client_a.close()
    client_b.close()


def backup(node: Node, volume: str, dest: Path, **extra: Any) -> ModuleResult:
    return run_module("volume_backup", dict(volume=volume, dest=str(dest), docker_host=node.docker_host, **extra))


def restore(node: Node, path: str, **extra: Any) -> ModuleResult:
    return run_module("volume_restore", dict(path=path, docker_host=node.docker_host, **extra))


@pytest.mark.parametrize("driver,data_path", [("local", "fast"), (PLUGIN, "engine")])
def test_backup_then_restore_same_host_and_other_node_keeps_every_file(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path,
        driver: str, data_path: str) -> None:
    source, other, client_a, client_b, image = nodes
    volume = "%s-%s" % (PREFIX, "local" if driver == "local" else "plugin")
    make_volume(client_a, image, volume, driver)
    original = listing(client_a, image, volume)
    dest = tmp_path / "archives"

    made = backup(source, volume, dest).assert_ok()
    assert made["data_path"] == data_path
    archive = made["path"]
    manifest = json.loads(Path(archive + ".json").read_text())
    assert sha256_of(archive) == manifest["sha256"] == made["sha256"]
    assert (manifest["volume"], manifest["driver"], manifest["files"]) == (volume, driver, made["files"])
    assert made["files"] == original.count("\n./")
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600" and oct(dest.stat().st_mode & 0o777) == "0o700"
    assert not list(dest.glob("*.partial"))

    # Same host, into a new volume: identical listing, taken on the engine.
    same = restore(source, archive, volume=volume + "-copy").assert_ok()
    assert same.changed and same["created"] and same["data_path"] == data_path
    assert listing(client_a, image, volume + "-copy") == original
    assert client_a.volumes.get(volume + "-copy").attrs["Driver"] == driver

    # Another node, same name and driver as the manifest: identical listing there; a second run changes nothing.
    there = restore(other, archive).assert_ok()
    assert there.changed and there["created"]
    assert client_b.volumes.get(volume).attrs["Driver"] == driver
    assert listing(client_b, image, volume) == original
    assert not restore(other, archive).assert_ok().changed

    # Data changed afterwards: refused without force, back to the archive with force.
    in_volume(client_b, image, volume, "echo changed > /v/app/conf/app.ini; rm /v/hard-blob; touch /v/new")
    changed = listing(client_b, image, volume)
    refused = restore(other, archive).assert_failed()
    assert "not empty" in refused.msg and "force: true" in refused.msg
    assert listing(client_b, image, volume) == changed
    forced = restore(other, archive, force=True).assert_ok()
    assert forced["cleared"]
    assert listing(client_b, image, volume) == original


def test_backup_to_local_volume_restores_into_plugin_volume_and_back(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path) -> None:
    """The archive format does not depend on the data path: fast-path archives restore on the engine path too."""
    source, other, client_a, client_b, image = nodes
    volume = PREFIX + "-cross"
    make_volume(client_a, image, volume, "local")
    original = listing(client_a, image, volume)
    archive = backup(source, volume, tmp_path, compression="gzip").assert_ok()["path"]
    assert archive.endswith(".tar.gz")
    onto_plugin = restore(other, archive, driver=PLUGIN).assert_ok()
    assert onto_plugin["data_path"] == "engine"
    assert listing(client_b, image, volume) == original
    again = backup(other, volume, tmp_path / "b", compression="none").assert_ok()
    assert again["data_path"] == "engine" and again["path"].endswith(".tar")
    back = restore(source, again["path"], volume=volume + "-back", driver="local").assert_ok()
    assert back["data_path"] == "fast"
    assert listing(client_a, image, volume + "-back") == original


def test_check_mode_writes_nothing(nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str],
                                   tmp_path: Path) -> None:
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-check"
    make_volume(client_a, image, volume, "local")
    dest = tmp_path / "none-yet"
    planned = run_module("volume_backup", dict(volume=volume, dest=str(dest), docker_host=source.docker_host),
                         check=True).assert_ok()
    assert planned.changed and planned["data_path"] == "fast" and planned["files"] > 10
    assert not dest.exists()
    archive = backup(source, volume, tmp_path).assert_ok()["path"]
    preview = run_module("volume_restore", dict(path=archive, volume=volume + "-new", docker_host=source.docker_host),
                         check=True, diff=True).assert_ok()
    assert preview.changed and preview["created"]
    assert preview["diff"]["before"] == {"volume": volume + "-new", "exists": False}
    assert volume + "-new" not in [v.name for v in client_a.volumes.list()]


def test_keep_deletes_only_the_oldest_archives_of_that_volume(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path) -> None:
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-keep"
    make_volume(client_a, image, volume, "local")
    foreign = tmp_path / "notes.tar.zst"
    foreign.write_text("not an archive of ours")
    paths = [backup(source, volume, tmp_path, keep=2).assert_ok()["path"] for _run in range(3)]
    assert sorted(p.name for p in tmp_path.glob("*.tar.zst")) == sorted(
        [os.path.basename(p) for p in paths[1:]] + [foreign.name])
    assert not Path(paths[0] + ".json").exists()


def test_bad_inputs_change_nothing(nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str],
                                   tmp_path: Path) -> None:
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-bad"
    make_volume(client_a, image, volume, "local")
    dest = tmp_path / "d"
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(compression_level=42), "compression_level for zstd must be 1..19"),
        (dict(compression="none", compression_level=3), "does not apply to compression none"),
        (dict(keep=0), "keep must be at least 1"),
        (dict(pre_command="sync"), "need command_container"),
        (dict(stop_containers=True, command_container="x", pre_command="sync"), "exclude each other"),
    ]
    for extra, message in cases:
        failed = backup(source, volume, dest, **extra).assert_failed()
        assert message in failed.msg, failed.describe()
    missing = backup(source, PREFIX + "-missing", dest).assert_failed()
    assert "does not exist" in missing.msg
    assert not dest.exists()
    gone = restore(source, str(tmp_path / "nothing.tar.zst")).assert_failed()
    assert "cannot read the manifest" in gone.msg


def test_unsafe_entry_found_while_the_copy_runs_fails_the_backup_and_leaves_no_archive(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path) -> None:
    """The fast path walks the volume while tar already copies it: a FIFO the walk reaches last (after a big file
    and other directories went to tar) still fails the backup, and the destination holds nothing."""
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-fifo"
    client_a.volumes.create(volume)
    in_volume(client_a, image, volume, "head -c 20000000 /dev/urandom > /v/big; mkdir /v/a-last; "
                                       "for d in 1 2 3 4 5 6 7 8; do mkdir /v/d$d; echo $d > /v/d$d/f; done; "
                                       "mkfifo /v/a-last/pipe")
    dest = tmp_path / "archives"
    failed = backup(source, volume, dest).assert_failed()
    assert "'./a-last/pipe' is a FIFO" in failed.msg and "left no archive" in failed.msg, failed.describe()
    assert os.listdir(dest) == []
    assert in_volume(client_a, image, volume, "test -p /v/a-last/pipe && wc -c < /v/big").strip() == "20000000"


# Crafted archives: each refused naming the entry; nothing written inside or outside the volume.

def crafted_archive(directory: Path, members: list[tuple[str, bytes, str, bytes]]) -> str:
    path = directory / "crafted.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(dir_info("."))
        for name, kind, link, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o644
            tar.addfile(info, io.BytesIO(data) if data else None)
    manifest = dict(format="dockhand.containers/volume-archive", format_version=1, volume=PREFIX + "-evil",
                    driver="local", options={}, labels={}, created=None, archived_at="2026-01-01T00:00:00+00:00",
                    archive=path.name, compression="none", compression_level=0, archive_bytes=path.stat().st_size,
                    sha256=sha256_of(str(path)), files=len(members), bytes=0, listing_sha256="0" * 64,
                    data_path="fast", collection_version="0.1.0")
    Path(str(path) + ".json").write_text(json.dumps(manifest))
    return str(path)


def node_passwd(node: Node) -> str:
    return subprocess.run(["docker", "exec", node.container, "sha256sum", "/etc/passwd"], capture_output=True,
                          text=True, check=True).stdout


def dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


CRAFTED = {
    "dotdot": ([("./../escape", tarfile.REGTYPE, "", b"x")], "'./../escape' climbs out of the volume"),
    "absolute": ([("/etc/dockhand-ar-x", tarfile.REGTYPE, "", b"x")], "'/etc/dockhand-ar-x' has an absolute path"),
    "symlink-to-root": ([("./root", tarfile.SYMTYPE, "/", b""), ("./root/etc/dockhand-ar-x", tarfile.REGTYPE, "", b"x")],
                        "symlink './root' points outside the volume"),
    "hardlink-passwd": ([("./passwd", tarfile.LNKTYPE, "/etc/passwd", b"")], "hard link './passwd' points outside"),
    "device": ([("./null", tarfile.CHRTYPE, "", b"")], "'./null' is a character device"),
    "fifo": ([("./pipe", tarfile.FIFOTYPE, "", b"")], "'./pipe' is a FIFO"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_archive_is_refused_and_nothing_is_written(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path, case: str) -> None:
    source, _other, client_a, _client_b, image = nodes
    members, message = CRAFTED[case]
    archive = crafted_archive(tmp_path, members)
    existing = PREFIX + "-target"
    if existing not in [v.name for v in client_a.volumes.list()]:
        client_a.volumes.create(existing)
    passwd_before = node_passwd(source)
    for target in (PREFIX + "-evil", existing):  # a volume to create, and an existing empty one
        refused = restore(source, archive, volume=target).assert_failed()
        assert message in refused.msg, refused.describe()
        assert refused.msg.endswith("nothing was written"), refused.msg
    names = [v.name for v in client_a.volumes.list()]
    assert PREFIX + "-evil" not in names
    assert in_volume(client_a, image, existing, "find /v -mindepth 1 | wc -l").strip() == "0"
    node_escape = "ls /var/lib/docker/volumes/%s/escape /etc/dockhand-ar-x 2>/dev/null || true" % existing
    assert subprocess.run(["docker", "exec", source.container, "sh", "-c", node_escape], capture_output=True,
                          text=True, check=True).stdout == ""
    assert not os.path.exists("/etc/dockhand-ar-x")
    assert node_passwd(source) == passwd_before


# A copy that fails midway with the volume's users stopped: they run again, no partial archive is left.

@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("failure", ["disk-full", "read-only"])
def test_stop_containers_backup_failing_midway_starts_them_again_and_leaves_no_archive(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tiny_tmpfs: Path,
        failure: str) -> None:
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-busy"
    if volume not in [v.name for v in client_a.volumes.list()]:
        client_a.volumes.create(volume)
        in_volume(client_a, image, volume, "head -c 2000000 /dev/urandom > /v/data")
    users = []
    for index in range(2):
        name = "%s-user%d" % (PREFIX, index)
        old = [c for c in client_a.containers.list(all=True, ignore_removed=True) if c.name == name]
        for container in old:
            container.remove(force=True)
        users.append(client_a.containers.run(image, ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                                             name=name, detach=True, volumes={volume: {"bind": "/data"}}))
    started = {c.name: client_a.api.inspect_container(c.id)["State"]["StartedAt"] for c in users}
    if failure == "read-only":
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    failed = backup(source, volume, tiny_tmpfs, stop_containers=True, stop_timeout=5).assert_failed()
    expected = "No space left" if failure == "disk-full" else "Read-only file system"
    assert expected in failed.msg and "left no archive" in failed.msg, failed.describe()
    assert "%s-user0" % PREFIX in failed.msg  # says which containers were stopped and started again
    for container in users:
        state = client_a.api.inspect_container(container.id)["State"]
        assert state["Running"], state
        assert state["StartedAt"] != started[container.name], "the container was never stopped"
    assert os.listdir(tiny_tmpfs) == []


def test_pre_and_post_command_run_around_the_copy(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path) -> None:
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-cmd"
    client_a.volumes.create(volume)
    app = client_a.containers.run(image, ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"], name=PREFIX + "-app",
                                  detach=True, volumes={volume: {"bind": "/data"}})
    made = backup(source, volume, tmp_path, command_container=app.name,
                  pre_command="echo dumped > /data/dump.sql", post_command="rm /data/dump.sql").assert_ok()
    assert made["files"] == 1  # the dump made by pre_command is in the archive ...
    assert in_volume(client_a, image, volume, "ls /v") == ""  # ... and post_command removed it afterwards
    failing = backup(source, volume, tmp_path / "f", command_container=app.name, pre_command="exit 3").assert_failed()
    assert "pre_command `exit 3`" in failing.msg and "exited 3" in failing.msg
    assert not (tmp_path / "f").exists() or not list((tmp_path / "f").iterdir())


# Over SSH, the way a user runs it: the modules on node3 (Debian's Docker SDK 5.0.3), archives on node3's disk.

SSH_PLAYBOOK = """
- name: Back up and restore volumes on the node itself
  hosts: node3
  gather_facts: false
  vars:
    prefix: "%(prefix)s"
  tasks:
    - name: Back up each volume
      dockhand.containers.volume_backup:
        volume: "{{ prefix }}-{{ item }}"
        dest: /var/backups/{{ prefix }}
      loop: [local, plugin]
      register: made

    - name: Restore each archive into a copy
      dockhand.containers.volume_restore:
        path: "{{ item.path }}"
        volume: "{{ item.volume }}-copy"
      loop: "{{ made.results }}"
      loop_control:
        label: "{{ item.volume }}"

    - name: Restore again (nothing to do)
      dockhand.containers.volume_restore:
        path: "{{ item.path }}"
        volume: "{{ item.volume }}-copy"
      loop: "{{ made.results }}"
      loop_control:
        label: "{{ item.volume }}"
      register: again

    - name: Nothing changed the second time
      ansible.builtin.assert:
        that: again.results | selectattr('changed') | list | length == 0
"""


def test_backup_and_restore_over_ssh_on_the_node(lab: LabState, run_playbook: Any,
                                                 nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient,
                                                              str]) -> None:
    _source, other, _client_a, client_b, image = nodes
    prefix = PREFIX + "-ssh"
    for kind, driver in (("local", "local"), ("plugin", PLUGIN)):
        make_volume(client_b, image, "%s-%s" % (prefix, kind), driver)
    try:
        result = run_playbook(SSH_PLAYBOOK % {"prefix": prefix}, limit="node3").assert_ok()
        paths = [r["path"] for r in result.task("Back up each volume", host="node3")["results"]]
        assert [r["data_path"] for r in result.task("Back up each volume", host="node3")["results"]] == \
            ["fast", "engine"]
        for kind in ("local", "plugin"):
            name = "%s-%s" % (prefix, kind)
            assert listing(client_b, image, name + "-copy") == listing(client_b, image, name)
        backups = "/var/backups/" + prefix
        on_node = subprocess.run(["docker", "exec", other.container, "sh", "-c",
                                  "stat -c '%%a %%n' %s %s/*" % (backups, backups)],
                                 capture_output=True, text=True, check=True).stdout.split("\n")
        assert on_node[0] == "700 " + backups
        assert sorted(line.split(" ", 1)[1] for line in on_node[1:] if line.endswith(".zst")) == sorted(paths)
        assert all(line.startswith("600 ") for line in on_node[1:] if line)
    finally:
        subprocess.run(["docker", "exec", other.container, "rm", "-rf", "/var/backups/" + prefix], check=False)


def test_restore_with_stop_containers_replaces_live_data_and_starts_the_user_again(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path) -> None:
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-live"
    make_volume(client_a, image, volume, PLUGIN)
    original = listing(client_a, image, volume)
    archive = backup(source, volume, tmp_path).assert_ok()["path"]
    user = client_a.containers.run(image, ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                                   name=PREFIX + "-live-user", detach=True, volumes={volume: {"bind": "/data"}})
    user.exec_run(["sh", "-c", "rm -rf /data/app && echo new > /data/new"])
    started = client_a.api.inspect_container(user.id)["State"]["StartedAt"]
    done = restore(source, archive, force=True, stop_containers=True, stop_timeout=5).assert_ok()
    assert done["stopped"] == [user.name] and done["cleared"] and done["data_path"] == "engine"
    state = client_a.api.inspect_container(user.id)["State"]
    assert state["Running"] and state["StartedAt"] != started
    assert listing(client_a, image, volume) == original


def node_volume_dir(node: Node, volume: str) -> list[str]:
    """What the node's Engine keeps in its own directory of the volume (``_data`` and, during a restore, staging)."""
    out = subprocess.run(["docker", "exec", node.container, "ls", "-A", "/var/lib/docker/volumes/%s" % volume],
                         capture_output=True, text=True, check=True).stdout
    return sorted(out.split())


def test_local_restore_is_staged_beside_the_data_and_a_damaged_archive_changes_nothing(
        nodes: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str], tmp_path: Path) -> None:
    source, _other, client_a, _client_b, image = nodes
    volume = PREFIX + "-staged"
    make_volume(client_a, image, volume, "local")
    original = listing(client_a, image, volume)
    good = backup(source, volume, tmp_path / "good").assert_ok()["path"]
    damaged = str(tmp_path / os.path.basename(good))
    for suffix in ("", ".json"):
        Path(damaged + suffix).write_bytes(Path(good + suffix).read_bytes())
    with open(damaged, "r+b") as handle:
        handle.seek(-200, os.SEEK_END)
        byte = handle.read(1)
        handle.seek(-200, os.SEEK_END)
        handle.write(bytes([byte[0] ^ 0xFF]))
    in_volume(client_a, image, volume, "rm -rf /v/app && echo changed > /v/new")
    changed = listing(client_a, image, volume)
    # A restore killed midway leaves its staging directory behind: the next restore removes it.
    subprocess.run(["docker", "exec", source.container, "mkdir", "-p",
                    "/var/lib/docker/volumes/%s/dockhand-restore.1/half" % volume], check=True)

    refused = restore(source, damaged, volume=volume, force=True).assert_failed()
    assert "but its manifest says" in refused.msg and refused.msg.endswith("nothing was written"), refused.msg
    assert listing(client_a, image, volume) == changed
    assert node_volume_dir(source, volume) == ["_data"]

    done = restore(source, good, volume=volume, force=True).assert_ok()
    assert done["data_path"] == "fast" and done["cleared"] and done["changed"]
    assert listing(client_a, image, volume) == original
    assert node_volume_dir(source, volume) == ["_data"]
    assert restore(source, good, volume=volume).assert_ok()["changed"] is False
