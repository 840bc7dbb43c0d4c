"""Scenario: the final stream of a move between two spare nodes is tampered with on its way through the controller.

The inventory's SSH client for the move is replaced (``ansible_ssh_executable``, as a user would set a wrapper) by
a script that runs the real ssh for everything but the SECOND send (the final copy, after the service was
stopped). That stream is either altered (one byte of a file's data flipped, with the stream uncompressed so only
the sha256 can tell) or replaced by a well-formed stream whose tar holds a symlink to /tmp and a file through it.
The target refuses it, empties the volume and the move removes it; the source runs the service again with its data,
and nothing was written on the target outside the volume.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import LabState, Node, RunPlaybook
from module_runner import run_module
from test_move_service import Spares, node_pair, spare_pair
from test_volume_backup import in_volume

TOKEN = uuid.uuid4()
NAME = "mv-tamper%s" % TOKEN.hex[:4]
PORT = 19590 + TOKEN.int % 8
VOLUME = NAME + "-data"
ESCAPED = "/tmp/%s-escaped" % NAME
PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "move_service.yml"

# Runs the real ssh, except for the second `... send /dir ...` (the final copy): then FLIP or CRAFTED.
WRAPPER = r'''#!%(python)s
import os, subprocess, sys
ssh, state, mode, crafted = %(ssh)r, %(state)r, %(mode)r, %(crafted)r
if " send /" not in (sys.argv[-1] if len(sys.argv) > 1 else ""):
    os.execv(ssh, [ssh] + sys.argv[1:])
count = int(open(state).read() or 0) + 1 if os.path.exists(state) else 1
open(state, "w").write(str(count))
if count != 2:
    os.execv(ssh, [ssh] + sys.argv[1:])
out = sys.stdout.buffer
if mode == "crafted":
    out.write(open(crafted, "rb").read())
    sys.exit(0)
proc = subprocess.Popen([ssh] + sys.argv[1:], stdout=subprocess.PIPE)
flipped = False
while True:
    head = proc.stdout.read(5)
    if len(head) < 5:
        break
    payload = bytearray(proc.stdout.read(int.from_bytes(head[1:], "big")))
    if head[:1] == b"D" and len(payload) > 100000 and not flipped:
        payload[len(payload) // 2] ^= 1
        flipped = True
    out.write(head + payload)
    out.flush()
sys.exit(proc.wait())
'''


def frame(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def crafted_stream() -> bytes:
    """A well-formed volume stream (header, data, trailer with the right sha256) whose tar escapes the volume."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, target, data in ((".", tarfile.DIRTYPE, "", b""), ("./ok", tarfile.REGTYPE, "", b"fine"),
                                         ("./root", tarfile.SYMTYPE, "/tmp", b""),
                                         ("./root/" + Path(ESCAPED).name, tarfile.REGTYPE, "", b"escaped")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size, info.mode = kind, target, len(data), 0o755
            tar.addfile(info, io.BytesIO(data) if data else None)
    data = buffer.getvalue()
    header = dict(format="dockhand.containers/volume-stream", format_version=1, compression="none")
    trailer = dict(sha256=hashlib.sha256(data).hexdigest(), stream_bytes=len(data), files=3, bytes=11,
                   listing_sha256="0" * 64)
    return (frame(b"H", json.dumps(header).encode()) + frame(b"D", data)
            + frame(b"T", json.dumps(trailer).encode()))


LAB_GROUP = "spare"  # two spare nodes of its own (see test_move_service.py)


@pytest.fixture(scope="module")
def spares(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spares]:
    with spare_pair(lab, tmp_path_factory.mktemp("mv-spares")) as made:
        yield made


@pytest.fixture
def pair(lab: LabState, spares: Spares) -> Iterator[tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]]:
    with node_pair(lab, spares, NAME) as made:
        yield made


@pytest.mark.parametrize("mode,refusal", [("flip", "altered on the way"),
                                          ("crafted", "symlink './root' points outside the volume")])
def test_tampered_final_stream_is_refused_and_the_service_runs_on_the_source_again(
        lab: LabState, run_playbook: RunPlaybook, tmp_path: Path, mode: str, refusal: str,
        spares: Spares, pair: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]) -> None:
    source, target, a, b, image = pair
    spec: dict[str, Any] = dict(name=NAME, image=lab.images["v1"].pinned, volumes=[VOLUME + ":/data"],
                                ports=["%d:8080" % PORT], registry_username=lab.registry_username,
                                registry_password=lab.registry_password)
    run_module("service", dict(spec, docker_host=source.docker_host)).assert_ok()
    in_volume(a, image, VOLUME, "head -c 3000000 /dev/urandom > /v/blob && echo 1 > /v/log")
    before = in_volume(a, image, VOLUME, "sha256sum /v/blob /v/log")
    (tmp_path / "crafted").write_bytes(crafted_stream())
    wrapper = tmp_path / "ssh-wrapper"
    wrapper.write_text(WRAPPER % dict(python=sys.executable, ssh=shutil.which("ssh"), state=str(tmp_path / "sends"),
                                      mode=mode, crafted=str(tmp_path / "crafted")))
    wrapper.chmod(0o755)

    failed = run_playbook(PLAYBOOK, inventory=spares.inventory, extra_vars=dict(
        move_service_from=source.name, move_service_to=target.name, move_service_spec=spec,
        move_service_stream_compression="none", ansible_ssh_executable=str(wrapper))).assert_failed()
    assert (tmp_path / "sends").read_text() == "2", failed.describe()
    assert refusal in failed.stdout and "emptied again" in failed.stdout, failed.describe()
    assert "Stream the final copy of each volume over the first one" in failed.stdout, failed.describe()
    assert "the service runs on %s again" % source.name in failed.stdout, failed.describe()

    # The source runs it again with its data; the target keeps no container, no volume, and nothing outside the volume.
    assert a.containers.get(NAME).status == "running"
    assert in_volume(a, image, VOLUME, "sha256sum /v/blob /v/log") == before
    assert NAME not in [c.name for c in b.containers.list(all=True, ignore_removed=True)]
    assert VOLUME not in [v.name for v in b.volumes.list()]
    outside = subprocess.run(["docker", "exec", target.container, "ls", "/tmp"], capture_output=True, text=True,
                             check=True)
    assert Path(ESCAPED).name not in outside.stdout.split()
