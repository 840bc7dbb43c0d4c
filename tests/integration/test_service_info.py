"""Scenarios: report what runs for each managed service on a host (the data behind a fleet drift report), and
show drift after someone changes a container by hand.

The services are deployed with the service and stack modules on lab node2 (docker_host); every reported value
is compared with what that engine says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import ModuleResult, Service, poll, remove_service_objects, run_module

pytestmark = pytest.mark.lab
NODE_INDEX = 1  # the lab node this module works on (see the node fixture)

PREFIX = "si"


@pytest.fixture(scope="module")
def fleet(lab: LabState, node: Node, engine: Any) -> Iterator[dict[str, Service]]:
    """si-app: v1 then v2 (so it has a previous image), healthy. si-stack-worker: in stack si-stack, crashes and
    is restarted twice by the engine before it gives up."""
    remove_service_objects(engine, PREFIX)
    app = Service(f"{PREFIX}-app", node.docker_host, engine, image=lab.images["v1"].pinned,
                  volumes=[f"{PREFIX}-app-data:/data"], registry_username=lab.registry_username,
                  registry_password=lab.registry_password)
    app.run().assert_ok()
    app.defaults["image"] = lab.images["v2"].pinned  # what is declared from now on
    app.run().assert_ok()
    worker = f"{PREFIX}-stack-worker"
    run_module("stack", dict(
        name=f"{PREFIX}-stack", docker_host=node.docker_host, registry_username=lab.registry_username,
        registry_password=lab.registry_password,
        services=[dict(name=worker, image=lab.images["tool"].pinned, command=["sh", "-c", "exit 3"],
                       restart_policy="on-failure", restart_retries=2, wait="none",
                       volumes=[f"{worker}-data:/work", {"type": "tmpfs", "target": "/scratch"}])],
    )).assert_ok()

    def worker_gave_up() -> bool:
        attrs = engine.containers.get(worker).attrs
        return attrs["RestartCount"] == 2 and attrs["State"]["Status"] == "exited" and not attrs["State"]["Restarting"]

    poll("the worker restarted twice and stopped", worker_gave_up, deadline_s=60)
    yield {"app": app, "worker": Service(worker, node.docker_host, engine)}
    remove_service_objects(engine, PREFIX)


def info(node: Node, **args: Any) -> ModuleResult:
    return run_module("service_info", dict(args, docker_host=node.docker_host)).assert_ok()


def _expected_from_engine(container: Any) -> dict[str, Any]:
    attrs = container.attrs
    labels = attrs["Config"]["Labels"]
    return dict(
        name=labels["dockhand.service"],
        container_id=container.id,
        image=attrs["Config"]["Image"],
        digest=labels["dockhand.digest"],
        spec_hash=labels["dockhand.spec-hash"],
        previous_image=labels.get("dockhand.previous-image"),
        stack=labels.get("dockhand.stack"),
        state=attrs["State"]["Status"],
        health=(attrs["State"].get("Health") or {}).get("Status"),
        restart_count=attrs["RestartCount"],
        volumes=[dict(name=m["Name"], target=m["Destination"], driver=m["Driver"])
                 for m in attrs["Mounts"] if m["Type"] == "volume"],
    )


def test_info_reports_digest_spec_hash_restarts_health_and_volumes_as_the_engine_sees_them(
        lab: LabState, node: Node, engine: Any, fleet: dict[str, Service]) -> None:
    app, worker = fleet["app"].name, fleet["worker"].name
    result = info(node, name=[app, worker])
    assert result.changed is False
    by_name = {s["name"]: s for s in result["services"]}
    assert sorted(by_name) == [app, worker], result.describe()
    for name, reported in by_name.items():
        expected = _expected_from_engine(engine.containers.get(name))
        assert {k: reported[k] for k in expected} == expected, name
        assert reported["drift"] == [], name

    assert by_name[app]["digest"] == lab.images["v2"].digest
    assert by_name[app]["image"] == lab.images["v2"].pinned
    assert by_name[app]["previous_image"] == lab.images["v1"].pinned
    assert by_name[app]["state"] == "running" and by_name[app]["health"] == "healthy"
    assert by_name[app]["volumes"] == [{"name": f"{PREFIX}-app-data", "target": "/data", "driver": "local"}]
    assert by_name[app]["stack"] is None
    assert by_name[worker]["restart_count"] == 2 and by_name[worker]["state"] == "exited"
    assert by_name[worker]["stack"] == f"{PREFIX}-stack"
    assert by_name[worker]["volumes"] == [{"name": f"{worker}-data", "target": "/work", "driver": "local"}]
    assert by_name[worker]["health"] is None

    only_stack = info(node, stack=f"{PREFIX}-stack")
    assert [s["name"] for s in only_stack["services"]] == [worker]


def test_manual_restart_policy_change_shows_as_drift_and_the_service_module_repairs_it(
        node: Node, engine: Any, fleet: dict[str, Service]) -> None:
    app = fleet["app"]
    container = engine.containers.get(app.name)
    started_at = container.attrs["State"]["StartedAt"]
    container.update(restart_policy={"Name": "always"})  # what `docker update --restart always` does
    try:
        drifted = {s["name"]: s for s in info(node, name=[app.name, fleet["worker"].name])["services"]}
        assert drifted[app.name]["drift"] == ["restart_policy"]
        assert drifted[fleet["worker"].name]["drift"] == []

        repaired = app.run(diff=True).assert_ok()
        assert repaired["actions"] == ["update"], repaired.describe()
        assert repaired["diff"]["before"]["restart_policy"] == {"name": "always", "retries": 0}
        container.reload()
        assert container.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
        assert container.attrs["State"]["StartedAt"] == started_at
        assert {s["name"]: s["drift"] for s in info(node, name=[app.name])["services"]} == {app.name: []}
    finally:
        container.update(restart_policy={"Name": "on-failure", "MaximumRetryCount": 5})


def test_unmanaged_containers_are_not_reported(lab: LabState, node: Node, engine: Any,
                                               fleet: dict[str, Service]) -> None:
    stranger = engine.containers.run(lab.images["v1"].pinned, name=f"{PREFIX}-stranger", detach=True)
    try:
        reported = [s["name"] for s in info(node)["services"]]
        assert f"{PREFIX}-stranger" not in reported
        assert {fleet["app"].name, fleet["worker"].name} <= set(reported)
    finally:
        stranger.remove(force=True)
