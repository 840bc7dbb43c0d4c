"""Scenarios: the cases of issue 9, one test each - a job killed in the health wait of a broken image or while
undoing a failed update and then retried, a new service whose start fails, a stack that loses its registry, and
the smaller input cases (empty stack name, services that is no list, repo:tag@digest). Case 3 (concurrent runs)
is test_swap_concurrent.py; every crash point is test_swap_crash.py.

The module runs on this machine against lab node1's engine; every assertion reads that engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import Service, exec_text, poll, remove_service_objects, run_module
from swap_jobs import KillAt, names_on_engine

pytestmark = pytest.mark.lab
NODE_INDEX = 0

FAST_HEALTH = {"test": ["CMD", "/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"],
               "interval": "300ms", "timeout": "2s", "retries": 2, "start_period": "0s"}


@pytest.fixture
def service(lab: LabState, node: Node, engine: Any, request: pytest.FixtureRequest) -> Iterator[Service]:
    """A fresh v1 service with a named volume holding a marker file, removed afterwards."""
    name = "sw-" + request.node.originalname.removeprefix("test_").replace("_", "-")[:30].rstrip("-")
    made = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned, volumes=[f"{name}-data:/data"],
                   healthcheck=FAST_HEALTH, stop_timeout=2, wait_timeout=30,
                   registry_username=lab.registry_username, registry_password=lab.registry_password)
    made.cleanup()
    yield made
    made.cleanup()


def healthy(service: Service) -> bool:
    return bool(service.container().attrs["State"].get("Health", {}).get("Status") == "healthy")


def test_case1_killed_in_the_health_wait_of_a_broken_image_the_retry_fails_and_puts_v1_back(
        lab: LabState, service: Service) -> None:
    service.run().assert_ok()
    old = service.container()
    exec_text(old, "echo kept > /data/marker")
    broken = service.args(image=lab.images["broken"].pinned)

    # Killed while the new (never healthy) container is being health-checked: right after it was started.
    killer = KillAt(service.client, service.name, lambda seen: seen[-1].startswith("start "))
    killer.run(broken)
    assert killer.killed_at and killer.killed_at.startswith("start"), killer.seen

    retry = run_module("service", broken)
    assert retry.failed, "a retry of a failed update must fail\n" + retry.describe()
    assert "put back" in retry.msg and "unhealthy" in retry.msg, retry.describe()
    assert names_on_engine(service.client, service.name) == {service.name}
    after = service.container()
    assert after.id == old.id and after.attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert after.attrs["State"]["Running"] is True
    poll("v1 healthy again", lambda: healthy(service))
    assert exec_text(after, "cat /data/marker").strip() == "kept"


def test_case2_killed_while_undoing_a_failed_update_the_retry_leaves_v1_running(
        lab: LabState, service: Service) -> None:
    service.run().assert_ok()
    old = service.container()
    exec_text(old, "echo kept > /data/marker")
    broken = service.args(image=lab.images["broken"].pinned)

    # The new container turned unhealthy; the run undoes the update; it is killed at the undo's first Engine event.
    def undoing(seen: list[str]) -> bool:
        unhealthy = [i for i, event in enumerate(seen) if event.startswith("health_status: unhealthy")]
        return bool(unhealthy) and len(seen) > unhealthy[0] + 1 and seen[-1].split()[0] in ("kill", "destroy", "stop")

    killer = KillAt(service.client, service.name, undoing)
    killer.run(broken)
    assert killer.killed_at, killer.seen

    retry = run_module("service", broken)
    assert retry.failed and "put back" in retry.msg, retry.describe()
    assert names_on_engine(service.client, service.name) == {service.name}
    after = service.container()
    assert after.id == old.id and after.attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert after.attrs["State"]["Running"] is True, "v1 ran before the update: it must run after any failed run"
    poll("v1 healthy again", lambda: healthy(service))
    assert exec_text(after, "cat /data/marker").strip() == "kept"


def test_case4_a_new_service_whose_start_fails_leaves_no_container_behind(
        lab: LabState, node: Node, service: Service) -> None:
    # Another process holds the host port on the node: here a container that publishes it.
    holder_name = service.name + "-porthold"
    service.client.containers.run(lab.images["tool"].pinned, ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
                                  name=holder_name, detach=True, ports={"8080/tcp": ("0.0.0.0", 19104)})
    failed = service.run(ports=["19104:8080"], volumes=None).assert_failed()
    assert "19104" in failed.msg or "port is already allocated" in failed.msg, failed.describe()
    assert names_on_engine(service.client, service.name) == {holder_name}, "nothing half-made may stay behind"


def test_case6_a_stack_that_loses_its_registry_reports_every_services_outcome(
        lab: LabState, node: Node, engine: Any) -> None:
    stack = "sw-case6"
    lost = "127.0.0.1:19199/dockhand/app@" + lab.images["v2"].digest  # nothing listens there: the registry is gone
    services = [
        dict(name=f"{stack}-a", image=lab.images["v1"].pinned),
        dict(name=f"{stack}-b", image=lost),
        dict(name=f"{stack}-c", image=lab.images["v2"].pinned, depends_on=[f"{stack}-b"]),
        dict(name=f"{stack}-d", image=lab.images["v1"].pinned),
    ]
    remove_service_objects(engine, stack)
    try:
        failed = run_module("stack", dict(name=stack, services=services, docker_host=node.docker_host,
                                          registry_username=lab.registry_username,
                                          registry_password=lab.registry_password)).assert_failed()
        assert lost in failed.msg, failed.describe()
        outcomes = {name: item["outcome"] for name, item in failed["services"].items()}
        assert outcomes == {f"{stack}-a": "converged", f"{stack}-b": "failed", f"{stack}-c": "not attempted",
                            f"{stack}-d": "converged"}, failed.describe()
        assert lost in failed["services"][f"{stack}-b"]["msg"]
        assert f"{stack}-b" in failed["services"][f"{stack}-c"]["msg"]
        for name in (f"{stack}-a", f"{stack}-d"):
            container = engine.containers.get(name)
            assert container.attrs["State"]["Running"] and container.id == failed["services"][name]["container_id"]
        assert names_on_engine(engine, f"{stack}-b") == set() and names_on_engine(engine, f"{stack}-c") == set()
    finally:
        remove_service_objects(engine, stack)


def test_case7_an_empty_stack_name_is_refused_and_nothing_is_created(lab: LabState, node: Node, engine: Any) -> None:
    remove_service_objects(engine, "sw-case7-web")
    try:
        refused = run_module("stack", dict(name="", services=[dict(name="sw-case7-web", image=lab.images["v1"].pinned)],
                                           docker_host=node.docker_host)).assert_failed()
        assert "name must not be empty" in refused.msg, refused.describe()
        assert names_on_engine(engine, "sw-case7-web") == set()
    finally:
        remove_service_objects(engine, "sw-case7-web")


def test_case7_services_that_is_not_a_list_gets_a_message_naming_services(node: Node) -> None:
    refused = run_module("stack", dict(name="sw-case7", services="notalist", docker_host=node.docker_host))
    assert refused.failed and "services must be a list" in refused.msg and "notalist" in refused.msg, \
        refused.describe()
    item = run_module("stack", dict(name="sw-case7", services=["web"], docker_host=node.docker_host))
    assert item.failed and "services[0] must be a dict" in item.msg, item.describe()


def test_case7_a_tag_with_a_digest_warns_that_the_digest_wins_and_reports_no_tag(lab: LabState) -> None:
    v1, v2 = lab.images["v1"], lab.images["v2"]
    result = run_module("image_digest", dict(image=f"{v2.repo}:v2@{v1.digest}", registry_username=lab.registry_username,
                                             registry_password=lab.registry_password)).assert_ok()
    assert result["digest"] == v1.digest and result["pinned"] == v1.pinned, result.describe()
    assert result["tag"] is None, "v2 was not resolved: no tag may be reported\n" + result.describe()
    assert any("digest wins" in w and "v2" in w for w in result.warnings), result.describe()
