"""Scenarios (issue 9 case 3): two and three runs of the same update at the same moment, several rounds; the lock
of a run that died is taken over; a live holder makes a waiting run give up naming it.

Each run is its own process group (swap_jobs.Job), started together against lab node1's engine; every assertion
reads that engine.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import Service, exec_text, run_module
from swap_jobs import Job, names_on_engine

pytestmark = pytest.mark.lab
NODE_INDEX = 0

HEALTH = {"test": ["CMD", "/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"],
          "interval": "1s", "timeout": "2s", "retries": 2, "start_period": "0s"}


@pytest.fixture
def service(lab: LabState, node: Node, engine: Any, request: pytest.FixtureRequest) -> Iterator[Service]:
    name = "sw-" + request.node.originalname.removeprefix("test_").replace("_", "-")[:30].rstrip("-")
    made = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned, volumes=[f"{name}-data:/data"],
                   healthcheck=HEALTH, stop_timeout=2, wait_timeout=30,
                   registry_username=lab.registry_username, registry_password=lab.registry_password)
    made.cleanup()
    yield made
    made.cleanup()


@pytest.mark.parametrize("ways, rounds, strategy", [(2, 3, "stop-first"), (3, 2, "start-first")])
def test_concurrent_runs_of_the_same_update_take_turns_and_one_of_them_makes_it(
        lab: LabState, service: Service, ways: int, rounds: int, strategy: str) -> None:
    service.defaults["update_strategy"] = strategy
    service.run().assert_ok()
    exec_text(service.container(), "echo kept > /data/marker")
    images = [lab.images["v2"].pinned, lab.images["v1"].pinned]
    for number in range(rounds):
        target = images[number % 2]
        args = service.args(image=target)
        jobs = [Job(args) for _run in range(ways)]  # started together: each swap waits a second for health
        results = [job.result() for job in jobs]
        report = "\n".join(r.describe() for r in results)
        assert not [r for r in results if r.failed], "runs that wait for each other all succeed\n" + report
        assert sum(r.changed for r in results) == 1, "exactly one run updates, the others find it done\n" + report
        assert names_on_engine(service.client, service.name) == {service.name}, report
        container = service.container()
        assert container.attrs["Config"]["Image"] == target and container.attrs["State"]["Running"], report
        assert container.attrs["State"]["Health"]["Status"] == "healthy", report
        assert {r["container_id"] for r in results} == {container.id}, report
        assert exec_text(container, "cat /data/marker").strip() == "kept"


def lock_labels(service: str, host: str, boot_id: str, pid: int, pid_start: str, lease: int) -> dict[str, str]:
    """The holder labels _lock.py writes (docs/swap.md, the lock)."""
    return {"dockhand.lock": service, "dockhand.lock.host": host, "dockhand.lock.boot-id": boot_id,
            "dockhand.lock.pid": str(pid), "dockhand.lock.pid-start": pid_start, "dockhand.lock.run": "test",
            "dockhand.lock.lease": str(lease)}


def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as handle:
        return handle.read().strip()


def start_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[19]


def plant_lock(service: Service, image: str, labels: dict[str, str]) -> str:
    created = service.client.api.create_container(image, name=service.name + "-dockhand-lock", labels=labels,
                                                  entrypoint=["/dockhand-lock"])
    return str(created["Id"])


def test_the_lock_of_a_run_that_died_is_taken_over(lab: LabState, service: Service) -> None:
    service.run().assert_ok()
    gone = os.fork()
    if gone == 0:
        os._exit(0)  # a process that has ended: its pid is what a killed run leaves in its lock
    gone_start = start_of(gone)
    os.waitpid(gone, 0)
    plant_lock(service, lab.images["v1"].pinned,
               lock_labels(service.name, socket.gethostname(), boot_id(), gone, gone_start, 900))
    updated = service.run(image=lab.images["v2"].pinned).assert_ok()
    assert updated.changed and service.container().attrs["Config"]["Image"] == lab.images["v2"].pinned
    assert names_on_engine(service.client, service.name) == {service.name}

    # A holder on another machine is dead once its lease has run out (by the Engine's clock).
    plant_lock(service, lab.images["v1"].pinned, lock_labels(service.name, "elsewhere", "other-boot", 1, "1", 0))
    back = service.run().assert_ok()
    assert back.changed and service.container().attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert names_on_engine(service.client, service.name) == {service.name}


def test_a_live_holder_makes_a_waiting_run_give_up_naming_it_and_changes_nothing(
        lab: LabState, service: Service) -> None:
    service.run().assert_ok()
    before = service.container()
    me = os.getpid()  # this test process is alive for the whole wait
    lock_id = plant_lock(service, lab.images["v1"].pinned,
                         lock_labels(service.name, socket.gethostname(), boot_id(), me, start_of(me), 900))
    refused = run_module("service", service.args(image=lab.images["v2"].pinned, wait_timeout=1, stop_timeout=0))
    assert refused.failed, refused.describe()
    assert f"pid {me} on host {socket.gethostname()}" in refused.msg, refused.describe()
    assert f"docker rm {service.name}-dockhand-lock" in refused.msg, refused.describe()
    after = service.container()
    assert after.id == before.id and after.attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert service.client.api.inspect_container(service.name + "-dockhand-lock")["Id"] == lock_id
