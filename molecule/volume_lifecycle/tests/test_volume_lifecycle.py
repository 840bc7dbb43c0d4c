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
HOST_ARCHIVES = "/tmp/vx-backups"
CONTROLLER_ARCHIVES = Path("/tmp/vx-volume-lifecycle/node2")


def mountpoint(host: Any) -> str:
    inspected = json.loads(host.check_output("docker volume inspect %s", VOLUME))[0]
    assert inspected["Driver"] == "local"
    return str(inspected["Mountpoint"])


def listing(host: Any) -> list[str]:
    """Every entry of the volume: path, type, mode, owner, size, mtime in whole seconds, link target, sha256."""
    root = mountpoint(host)
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


def test_the_volume_holds_what_the_writer_wrote(host: Any) -> None:
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


def test_node3_holds_the_same_entries_contents_modes_owners_and_mtimes_as_node2(host: Any, node2: Any) -> None:
    if host.backend.host != "node3":
        pytest.skip("compares node3 with node2")
    assert len(listing(node2)) == 7  # the root and its 6 entries
    assert listing(host) == listing(node2)


def test_the_writer_runs_again_after_the_backup_stopped_it(host: Any) -> None:
    if host.backend.host != "node2":
        pytest.skip("the writer runs on node2")
    assert host.docker("vx-writer").is_running


def test_node2_keeps_only_the_newest_archive(host: Any) -> None:
    if host.backend.host != "node2":
        pytest.skip("the backups ran on node2")
    names = host.check_output("ls %s", HOST_ARCHIVES).split()
    archives = sorted(n for n in names if not n.endswith(".json"))
    # Converge made a .tar.zst, side_effect a .tar.gz with keep=1: the first went, manifest and all.
    assert [n.rsplit(".", 2)[-2:] for n in archives] == [["tar", "gz"]]
    assert sorted(names) == sorted(archives + [a + ".json" for a in archives])
    for name in archives:
        archive = host.file("%s/%s" % (HOST_ARCHIVES, name))
        manifest = json.loads(host.file(archive.path + ".json").content_string)
        assert archive.mode == 0o600
        assert manifest["volume"] == VOLUME and manifest["sha256"] == archive.sha256sum


def test_the_controller_and_node3_hold_the_fetched_archive_with_its_manifests_checksum(host: Any) -> None:
    if host.backend.host != "node3":
        pytest.skip("node3 got the controller's copy")
    assert stat.S_IMODE(CONTROLLER_ARCHIVES.stat().st_mode) == 0o700
    fetched = sorted(p for p in CONTROLLER_ARCHIVES.iterdir() if p.suffix != ".json")
    assert [p.name.endswith(".tar.zst") for p in fetched] == [True]
    manifest = json.loads(Path(str(fetched[0]) + ".json").read_text())
    assert manifest["volume"] == VOLUME and manifest["files"] == 6
    assert hashlib.sha256(fetched[0].read_bytes()).hexdigest() == manifest["sha256"]
    pushed = host.file("%s/%s" % (HOST_ARCHIVES, fetched[0].name))
    assert pushed.mode == 0o600 and pushed.sha256sum == manifest["sha256"]
