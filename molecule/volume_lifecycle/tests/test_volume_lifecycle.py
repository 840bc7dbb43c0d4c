"""Verify the backup on node2 and the restore on node3 by reading each node's files and engine, not the modules."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import testinfra

VOLUME = "vx-data"
PLUGIN_VOLUME = "vx-plugin"
HOST_ARCHIVES = "/tmp/vx-backups"
CONTROLLER_ARCHIVES = Path("/tmp/vx-volume-lifecycle/node2")


def inspect(host: Any, volume: str) -> dict[str, Any]:
    inspected: dict[str, Any] = json.loads(host.check_output("docker volume inspect %s", volume))[0]
    return inspected


def mountpoint(host: Any, volume: str = VOLUME) -> str:
    return str(inspect(host, volume)["Mountpoint"])


def listing(host: Any, volume: str) -> list[str]:
    """Every entry of the volume: path, type, mode, owner, size, mtime in whole seconds, link target, sha256."""
    root = mountpoint(host, volume)
    entries = host.check_output("find %s -printf '%%P|%%y|%%m|%%U:%%G|%%s|%%T@|%%l\\n'", root).splitlines()
    sums = dict(reversed(line.split("  ./", 1))
                for line in host.check_output("cd %s && find . -type f -exec sha256sum {} +", root).splitlines())
    rows = []
    for entry in entries:
        path, kind, mode, owner, size, mtime, target = entry.split("|")
        size = size if kind == "f" else "-"  # a directory's size is its filesystem's business
        rows.append("|".join([path, kind, mode, owner, size, mtime.split(".")[0], target, sums.get(path, "")]))
    return sorted(rows)


@pytest.fixture(scope="module")
def node2(host: Any) -> Any:
    return testinfra.get_host("ansible://node2", ansible_inventory=host.backend.ansible_inventory)


def test_the_volumes_keep_their_drivers_and_labels(host: Any) -> None:
    assert inspect(host, VOLUME)["Driver"] == "local"
    plugin = inspect(host, PLUGIN_VOLUME)
    assert (plugin["Driver"], plugin["Labels"]) == ("dockhand-lab", {"vx.kind": "plugin"})


def test_the_volumes_hold_what_the_writer_wrote(host: Any) -> None:
    root = mountpoint(host)
    hello = host.file(root + "/docs/hello.txt")
    assert hello.content_string == "hello volume\n"
    assert (hello.mode, hello.uid, hello.gid) == (0o640, 1234, 5678)
    empty = host.file(root + "/docs/empty")
    assert empty.is_directory and host.check_output("ls -A %s", empty.path) == ""
    assert (empty.mode, empty.uid, empty.gid) == (0o750, 42, 43)
    assert host.file(root + "/latest").linked_to == root + "/docs/hello.txt"
    assert host.file(root + "/blob.bin").size == 256 * 1024
    assert host.file(root + "/blob.bin").mode == 0o600
    plugin_file = host.file(mountpoint(host, PLUGIN_VOLUME) + "/sub/p.txt")
    assert plugin_file.content_string == "plugin data\n"
    assert (plugin_file.mode, plugin_file.uid, plugin_file.gid) == (0o604, 7, 8)


def test_node3_holds_the_same_entries_contents_modes_owners_and_mtimes_as_node2(host: Any, node2: Any) -> None:
    if host.backend.host != "node3":
        pytest.skip("compares node3 with node2")
    assert len(listing(node2, VOLUME)) == 7  # the root and its 6 entries
    assert listing(host, VOLUME) == listing(node2, VOLUME)
    assert len(listing(node2, PLUGIN_VOLUME)) == 3
    assert listing(host, PLUGIN_VOLUME) == listing(node2, PLUGIN_VOLUME)


def test_the_writer_runs_again_after_the_backup_stopped_it(host: Any) -> None:
    if host.backend.host != "node2":
        pytest.skip("the writer runs on node2")
    assert host.docker("vx-writer").is_running


def test_node2_keeps_only_the_newest_archive(host: Any) -> None:
    if host.backend.host != "node2":
        pytest.skip("the backups ran on node2")
    names = host.check_output("ls %s", HOST_ARCHIVES).split()
    archives = sorted(n for n in names if not n.endswith(".json"))
    # Converge made a .tar.zst of each volume, side_effect a .tar.gz of vx-data with keep=1: vx-data's first
    # archive went, manifest and all; vx-plugin's stayed.
    assert [n.split("-2")[0] + n[n.index(".tar"):] for n in archives] == ["vx-data.tar.gz", "vx-plugin.tar.zst"]
    assert sorted(names) == sorted(archives + [a + ".json" for a in archives])
    for name in archives:
        archive = host.file("%s/%s" % (HOST_ARCHIVES, name))
        manifest = json.loads(host.file(archive.path + ".json").content_string)
        assert archive.mode == 0o600
        assert name.startswith(manifest["volume"] + "-") and manifest["sha256"] == archive.sha256sum


def test_the_controller_and_node3_hold_the_fetched_archives_with_their_manifests_checksums(host: Any) -> None:
    if host.backend.host != "node3":
        pytest.skip("node3 got the controller's copies")
    assert stat.S_IMODE(CONTROLLER_ARCHIVES.stat().st_mode) == 0o700
    fetched = sorted(p for p in CONTROLLER_ARCHIVES.iterdir() if p.suffix != ".json")
    assert [p.name.endswith(".tar.zst") for p in fetched] == [True, True]
    manifests = [json.loads(Path(str(p) + ".json").read_text()) for p in fetched]
    assert [(m["volume"], m["files"], m["data_path"]) for m in manifests] == [
        (VOLUME, 6, "fast"), (PLUGIN_VOLUME, 2, "engine")]
    for archive, manifest in zip(fetched, manifests):
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == manifest["sha256"]
        pushed = host.file("%s/%s" % (HOST_ARCHIVES, archive.name))
        assert pushed.mode == 0o600 and pushed.sha256sum == manifest["sha256"]
