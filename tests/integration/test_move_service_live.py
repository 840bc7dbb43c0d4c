"""Scenario: playbooks/move_service.yml moves a service that is being written to, and survives a killed transfer.

The service is the lab app (busybox httpd) with a CGI writer: each GET of /cgi-bin/w?ID appends ID to /data/log in
its named volume, replaces the one file in /data/churn by a new one (files vanish while the live first copy reads
them), then answers "ok ID". A client thread writes through the published port the whole time (to the source,
and to the target once the service answers there) and records every acknowledged ID. After the move the log on the
target (read on the target's engine) holds every acknowledged ID, and the source keeps its stopped container and its
volume. The source and the target are two spare nodes of this module's own (see test_move_service.py).

A second move is broken by killing the controller's SSH client that carries the final stream to the target (the
receiver's end of `ssh source <send> | ssh target <receive>`, after the service was stopped) as soon as it shows
up: the source runs the service again with its data, the report says so, and the target holds neither a container
nor a volume of that name. A variant takes the service's host port on the source while it is stopped: the start on the
source fails too, and the report says the service is restartable there (and it is).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import LabState, Node, RunPlaybook, http_get, wait_until
from module_runner import run_module
from test_move_service import Spares, node_pair, spare_pair
from test_volume_backup import in_volume

# Per run names (a concurrent run of this file must not touch this run's objects); ports from the "mv" range.
TOKEN = uuid.uuid4()
NAME = "mv-live%s" % TOKEN.hex[:4]
PORT = 19550 + TOKEN.int % 40
PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "move_service.yml"

# The app image's own entrypoint, with a CGI writer added first. An acknowledgement is sent only after the append.
WRITER = (
    "mkdir -p /www/cgi-bin && printf '%s\\n' '#!/bin/sh' 'echo \"$QUERY_STRING\" >> /data/log'"
    " 'mkdir -p /data/churn && rm -f /data/churn/* && echo > /data/churn/$QUERY_STRING'"
    " 'printf \"Content-Type: text/plain\\r\\n\\r\\nok %s\\n\" \"$QUERY_STRING\"' > /www/cgi-bin/w"
    " && chmod 755 /www/cgi-bin/w && trap 'exit 0' TERM INT; httpd -f -p 8080 -h /www & wait"
)


LAB_GROUP = "spare"  # two spare nodes of its own (see test_move_service.py)


@pytest.fixture(scope="module")
def spares(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spares]:
    with spare_pair(lab, tmp_path_factory.mktemp("mv-spares")) as made:
        yield made


@pytest.fixture
def pair(lab: LabState, spares: Spares) -> Iterator[tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]]:
    with node_pair(lab, spares, NAME) as made:
        yield made


def spec_for(lab: LabState, name: str, port: int) -> dict[str, Any]:
    # The credentials travel in the spec: the target pulls the image when the service starts there.
    return dict(name=name, image=lab.images["v1"].pinned, entrypoint=["/bin/sh", "-c", WRITER],
                volumes=[name + "-data:/data"], ports=["%d:8080" % port],
                registry_username=lab.registry_username, registry_password=lab.registry_password)


class Writer(threading.Thread):
    """Writes one new ID at a time to whichever node answers; remembers which IDs were acknowledged, and where."""

    def __init__(self, urls: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.acked: dict[str, list[int]] = {node: [] for node in urls}
        self.stop = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stop.is_set():
            for node, url in self.urls.items():
                number += 1
                try:
                    body = http_get("%s/cgi-bin/w?%d" % (url, number), timeout=2)
                except (OSError, urllib.error.URLError):
                    continue
                if body.strip() == "ok %d" % number:
                    self.acked[node].append(number)
            time.sleep(0.05)


def test_move_while_a_client_writes_keeps_every_acknowledged_write(
        lab: LabState, run_playbook: RunPlaybook, tmp_path: Path,
        spares: Spares, pair: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]) -> None:
    source, target, a, b, image = pair
    name = NAME + "-w"
    volume = name + "-data"
    spec = spec_for(lab, name, PORT)
    run_module("service", dict(spec, docker_host=source.docker_host)).assert_ok()
    writer = Writer({"source": "http://%s:%d" % (source.ip, PORT), "target": "http://%s:%d" % (target.ip, PORT)})
    writer.start()
    try:
        wait_until("writes acknowledged on the source", lambda: len(writer.acked["source"]) >= 5)
        moved = run_playbook(PLAYBOOK, inventory=spares.inventory, extra_vars=dict(
            move_service_from=source.name, move_service_to=target.name, move_service_spec=spec,
            move_service_controller_dir=str(tmp_path / "controller"))).assert_ok()
        after = len(writer.acked["target"])
        wait_until("writes acknowledged on the target after the move", lambda: len(writer.acked["target"]) >= after + 3)
    finally:
        writer.stop.set()
        writer.join(timeout=10)
    assert moved.task("Start the service on the target host and wait for it to be healthy", host=target.name)["changed"]

    # Every acknowledged write, wherever it was acknowledged, is in the volume on the target (read on its engine).
    on_target = set(in_volume(b, image, volume, "cat /v/log").split())
    acked = writer.acked["source"] + writer.acked["target"]
    assert writer.acked["source"] and writer.acked["target"]
    assert not [n for n in acked if str(n) not in on_target], (writer.acked, sorted(on_target, key=int))
    container = b.containers.get(name)
    assert container.status == "running" and container.attrs["Config"]["Image"] == lab.images["v1"].pinned

    # The source keeps its stopped container and its volume (with every write it acknowledged) for a way back.
    kept = a.containers.get(name)
    assert kept.status == "exited", kept.status
    on_source = set(in_volume(a, image, volume, "cat /v/log").split())
    assert {str(n) for n in writer.acked["source"]} <= on_source


def _cmdline(pid: str) -> list[str]:
    try:
        return Path("/proc", pid, "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _parent(pid: str) -> str:
    try:
        return Path("/proc", pid, "stat").read_text().rsplit(")", 1)[1].split()[1]
    except (OSError, IndexError):
        return "0"


def transfers_of(marker: str, port: int) -> list[int]:
    """PIDs of the controller's SSH clients to 127.0.0.1:port receiving a final stream (the receiver's command
    replaces the first copy: ``--replace``) started by an ansible-playbook whose command line holds marker (this
    test's tmp_path): never another run's processes."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        argv = _cmdline(pid)
        if not argv or Path(argv[0]).name != "ssh" or "Port=%d" % port not in argv:
            continue
        if not any("receive" in a and "--replace" in a for a in argv):
            continue
        ancestor, depth = _parent(pid), 0
        while ancestor not in ("0", "1") and depth < 10:
            if any(marker in a for a in _cmdline(ancestor)):
                found.append(int(pid))
                break
            ancestor, depth = _parent(ancestor), depth + 1
    return found


class TransferKiller(threading.Thread):
    """Kills every final stream to the target as soon as its SSH client shows up (after the service was stopped);
    ``first`` runs once, with the first ones frozen, before they are killed."""

    def __init__(self, marker: str, port: int, first: Callable[[], None] = lambda: None) -> None:
        super().__init__(daemon=True)
        self.marker, self.port, self.first = marker, port, first
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            found = transfers_of(self.marker, self.port)
            if found and not self.killed:
                for pid in found:  # frozen while ``first`` runs, so nothing moves on meanwhile
                    self._signal(pid, signal.SIGSTOP)
                self.first()
            for pid in found:
                if self._signal(pid, signal.SIGKILL):
                    self.killed.append(pid)
            time.sleep(0.01)

    @staticmethod
    def _signal(pid: int, number: int) -> bool:
        try:
            os.kill(pid, number)
        except ProcessLookupError:
            return False
        return True


@pytest.mark.parametrize("port_taken", [False, True], ids=["restarted", "restartable"])
def test_killed_transfer_leaves_the_service_running_on_the_source(
        lab: LabState, run_playbook: RunPlaybook, tmp_path: Path, port_taken: bool,
        spares: Spares, pair: tuple[Node, Node, docker.DockerClient, docker.DockerClient, str]) -> None:
    """restartable: while the service is stopped, another container takes its host port on the source, so starting it
    again fails: the report says so, and once the port is free again `docker start` brings it back with its data."""
    source, target, a, b, image = pair
    name = NAME + ("-t" if port_taken else "-k")
    volume = name + "-data"
    port = PORT + (2 if port_taken else 1)
    spec = spec_for(lab, name, port)
    run_module("service", dict(spec, docker_host=source.docker_host)).assert_ok()
    # Random data, so the stream lasts long enough to be caught while it runs.
    in_volume(a, image, volume, "head -c 48000000 /dev/urandom > /v/blob && echo 1 > /v/log")
    before = in_volume(a, image, volume, "sha256sum /v/blob /v/log")
    controller = tmp_path / "controller"
    squatter = name + "-squatter"

    def take_port() -> None:
        if port_taken:
            a.containers.run(image, ["sleep", "300"], name=squatter, detach=True, ports={"8080/tcp": port})

    killer = TransferKiller(str(tmp_path), target.ssh_port, take_port)
    killer.start()
    try:
        failed = run_playbook(PLAYBOOK, inventory=spares.inventory, extra_vars=dict(
            move_service_from=source.name, move_service_to=target.name, move_service_spec=spec,
            move_service_controller_dir=str(controller))).assert_failed()
    finally:
        killer.stop.set()
        killer.join(timeout=10)
    assert killer.killed, failed.describe()
    assert "Stream the final copy of each volume over the first one" in failed.stdout, failed.describe()
    if port_taken:
        assert "could NOT be started on %s again" % source.name in failed.stdout, failed.describe()
        assert "it is restartable there" in failed.stdout, failed.describe()
        assert a.containers.get(name).status in ("exited", "created")
        a.containers.get(squatter).remove(force=True)
        a.containers.get(name).start()
    else:
        assert "the service runs on %s again" % source.name in failed.stdout, failed.describe()

    # The source runs it (again) with its data; the target has no container and no volume of that name.
    assert a.containers.get(name).status == "running"
    assert in_volume(a, image, volume, "sha256sum /v/blob /v/log") == before
    wait_until("the service answering on the source again",
               lambda: http_get("http://%s:%d/cgi-bin/w?2" % (source.ip, port)).strip() == "ok 2")
    assert name not in [c.name for c in b.containers.list(all=True, ignore_removed=True)]
    assert volume not in [v.name for v in b.volumes.list()]
