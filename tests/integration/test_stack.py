"""Scenarios: converge a whole stack in one task - dependency order, missing images pulled, idempotent second run,
one service updated alone, prune of an undeclared service that keeps its named volume, and a bad item that stops
everything before anything changes.

The module runs on this machine against lab node1's engine (docker_host); assertions look at that engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest
from conftest import LabState, Node
from module_runner import EngineEvents, ModuleResult, fingerprint, labelled, names_of, remove_service_objects, run_module

pytestmark = pytest.mark.lab
NODE_INDEX = 0  # the lab node this module works on (see the node fixture)


class Stack:
    """A stack a test owns: every service is named ``<name>-<service>`` with a volume ``<name>-<service>-data``."""

    def __init__(self, lab: LabState, node: Node, engine: Any, name: str) -> None:
        self.lab, self.node, self.engine, self.name = lab, node, engine, name

    def service(self, short: str, image: str = "v1", **extra: Any) -> dict[str, Any]:
        full = f"{self.name}-{short}"
        item: dict[str, Any] = dict(name=full, image=self.lab.images[image].pinned, volumes=[f"{full}-data:/data"])
        if image == "tool":
            item.update(command=["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"])  # stops at once
        item.update(extra)
        return item

    def run(self, services: list[dict[str, Any]], *, check: bool = False, diff: bool = False,
            **extra: Any) -> ModuleResult:
        args = dict(name=self.name, services=services, docker_host=self.node.docker_host,
                    registry_username=self.lab.registry_username, registry_password=self.lab.registry_password)
        args.update(extra)
        return run_module("stack", args, check=check, diff=diff)

    def container(self, short: str) -> Any:
        return self.engine.containers.get(f"{self.name}-{short}")

    def cleanup(self) -> None:
        remove_service_objects(self.engine, self.name)


@pytest.fixture
def stack(lab: LabState, node: Node, engine: Any, request: pytest.FixtureRequest) -> Iterator[Stack]:
    name = "st-" + request.node.originalname.removeprefix("test_").split("_")[0]
    made = Stack(lab, node, engine, name)
    made.cleanup()
    yield made
    made.cleanup()


def _three_tier(stack: Stack, web_image: str = "v1") -> list[dict[str, Any]]:
    # Declared in the wrong order on purpose: depends_on must decide.
    return [
        stack.service("web", web_image, depends_on=[f"{stack.name}-api"]),
        stack.service("api", "v2", depends_on=[f"{stack.name}-db"]),
        stack.service("db", "tool"),
    ]


def _drop_unused_tool_image(engine: Any, lab: LabState) -> None:
    """Make the tool image missing on the node when nothing uses it, so the stack has something to pull."""
    try:
        engine.images.remove(lab.images["tool"].pinned)
    except docker.errors.APIError:  # absent, or another container uses it: then there is just less to pull
        pass


def test_dependency_order_pulls_idempotence(lab: LabState, engine: Any, stack: Stack) -> None:
    _drop_unused_tool_image(engine, lab)
    services = _three_tier(stack)
    missing_before = set()
    for item in services:
        try:
            engine.images.get(item["image"])
        except docker.errors.ImageNotFound:
            missing_before.add(item["image"])

    predicted = stack.run(services, check=True).assert_ok()
    assert labelled(engine, f"dockhand.stack={stack.name}") == []  # check mode created nothing
    first = stack.run(services).assert_ok()
    names = [f"{stack.name}-{s}" for s in ("db", "api", "web")]
    for key in ("order", "summary", "pruned", "changed"):
        assert predicted[key] == first[key], key
    assert first["order"] == names, first.describe()
    assert first.changed is True
    assert first["summary"] == {"create": 3, "recreate": 0, "update": 0, "start": 0, "stop": 0, "remove": 0,
                                "unchanged": 0}
    assert set(first["pulled"]) == missing_before
    assert first["pruned"] == []

    # The engine's own record: created and started in dependency order, each as declared.
    containers = [engine.containers.get(n) for n in names]
    created = [c.attrs["Created"] for c in containers]
    started = [c.attrs["State"]["StartedAt"] for c in containers]
    assert created == sorted(created) and started == sorted(started), (created, started)
    for container, short in zip(containers, ("db", "api", "web")):
        result = first["services"][container.name]
        assert result["actions"] == ["create"] and result["container_id"] == container.id
        attrs = container.attrs
        assert attrs["State"]["Running"] is True
        assert attrs["Config"]["Labels"]["dockhand.stack"] == stack.name
        assert attrs["Config"]["Image"] == result["image"]
        assert [(m["Name"], m["Destination"]) for m in attrs["Mounts"]] == [(f"{container.name}-data", "/data")]
    assert stack.container("api").attrs["Config"]["Image"] == lab.images["v2"].pinned
    assert stack.container("web").attrs["State"]["Health"]["Status"] == "healthy"
    assert names_of(labelled(engine, f"dockhand.stack={stack.name}")) == sorted(names)

    before = {c.name: fingerprint(c) for c in containers}
    second = stack.run(services, diff=True).assert_ok()
    assert second.changed is False, second.describe()
    assert second["summary"]["unchanged"] == 3 and sum(second["summary"].values()) == 3
    assert all(r["actions"] == [] for r in second["services"].values())
    assert second["pulled"] == []
    assert second["diff"] == {"before": {}, "after": {}}
    assert {n: fingerprint(engine.containers.get(n)) for n in names} == before


def test_update_of_one_service_leaves_the_others_alone(lab: LabState, engine: Any, stack: Stack) -> None:
    stack.run(_three_tier(stack)).assert_ok()
    untouched = {s: fingerprint(stack.container(s)) for s in ("db", "api")}
    old_web = stack.container("web").id

    updated = stack.run(_three_tier(stack, web_image="v2"), diff=True).assert_ok()
    assert updated["summary"]["recreate"] == 1 and updated["summary"]["unchanged"] == 2, updated.describe()
    web = updated["services"][f"{stack.name}-web"]
    assert web["actions"] == ["recreate"] and web["previous_image"] == lab.images["v1"].pinned
    assert updated["diff"]["after"][f"{stack.name}-web"]["image"] == lab.images["v2"].pinned
    assert stack.container("web").id != old_web
    assert stack.container("web").attrs["Config"]["Image"] == lab.images["v2"].pinned
    assert {s: fingerprint(stack.container(s)) for s in ("db", "api")} == untouched


def test_prune_removes_an_undeclared_service_but_keeps_its_named_volume(lab: LabState, engine: Any,
                                                                        stack: Stack) -> None:
    stack.run(_three_tier(stack)).assert_ok()
    stack.container("web").exec_run(["/bin/sh", "-c", "echo keep-me > /data/marker"])
    # Neighbours prune must never touch: a container of another stack and a lone service.
    other = Stack(lab, stack.node, engine, f"{stack.name}-other")
    other.run([other.service("solo")]).assert_ok()
    lone = run_module("service", dict(name=f"{stack.name}-lone", image=lab.images["v1"].pinned,
                                      docker_host=stack.node.docker_host,
                                      registry_username=lab.registry_username,
                                      registry_password=lab.registry_password)).assert_ok()
    kept = {s: fingerprint(stack.container(s)) for s in ("db", "api")}
    declared = _three_tier(stack)[1:]  # web is no longer declared

    predicted = stack.run(declared, prune=True, check=True).assert_ok()
    assert predicted["pruned"] == [f"{stack.name}-web"] and predicted.changed, predicted.describe()
    assert stack.container("web").attrs["State"]["Running"] is True  # check mode removed nothing

    pruned = stack.run(declared, prune=True).assert_ok()
    assert pruned["pruned"] == [f"{stack.name}-web"], pruned.describe()
    assert pruned["summary"]["remove"] == 1 and pruned["summary"]["unchanged"] == 2
    with pytest.raises(docker.errors.NotFound):
        stack.container("web")
    volume = engine.volumes.get(f"{stack.name}-web-data")
    marker = engine.containers.run(lab.images["v1"].pinned, entrypoint=["/bin/cat", "/data/marker"], remove=True,
                                   volumes={volume.name: {"bind": "/data", "mode": "ro"}})
    assert marker.decode().strip() == "keep-me"
    assert {s: fingerprint(stack.container(s)) for s in ("db", "api")} == kept
    assert other.container("solo").attrs["State"]["Running"] is True
    assert engine.containers.get(f"{stack.name}-lone").id == lone["container_id"]
    assert stack.run(declared, prune=True).assert_ok().changed is False


def test_bad_item_stops_the_whole_stack_before_anything_changes(lab: LabState, engine: Any, stack: Stack) -> None:
    services = _three_tier(stack)
    services[1] = dict(services[1], restart_policy="always", restart_retries=2)
    refused = stack.run(services).assert_failed()
    assert "restart_retries requires restart_policy=on-failure" in refused.msg, refused.describe()
    assert f"{stack.name}-api" in refused.msg
    assert labelled(engine, f"dockhand.stack={stack.name}") == []
    assert not [v for v in engine.volumes.list() if v.name.startswith(stack.name + "-")]

    cycle = _three_tier(stack)
    cycle[2] = dict(cycle[2], depends_on=[f"{stack.name}-web"])
    refused = stack.run(cycle).assert_failed()
    assert "cycle" in refused.msg, refused.describe()
    assert labelled(engine, f"dockhand.stack={stack.name}") == []


def test_failing_service_stops_the_stack_and_reports_what_was_done(lab: LabState, engine: Any, stack: Stack) -> None:
    services = [
        stack.service("db", "broken", wait="healthy", wait_timeout=30),
        stack.service("api", "v1", depends_on=[f"{stack.name}-db"]),
    ]
    failed = stack.run(services).assert_failed()
    assert f"service {stack.name}-db" in failed.msg and "unhealthy" in failed.msg, failed.describe()
    assert failed["order"] == []  # nothing completed
    with pytest.raises(docker.errors.NotFound):
        stack.container("api")  # what depends on the failed service was not started


def test_independent_services_converge_side_by_side_and_dependents_wait(engine: Any, stack: Stack) -> None:
    # Three independent services that each wait to be healthy, and one that depends on all of them.
    independent = [stack.service(s, "v1", wait="healthy") for s in ("a", "b", "c")]
    dependent = stack.service("d", "v1", depends_on=[s["name"] for s in independent])
    events = EngineEvents(engine).start()
    first = stack.run([*independent, dependent], parallelism=3).assert_ok()
    events.stop()
    assert first["order"][-1] == f"{stack.name}-d", first.describe()

    def when(action: str, name: str) -> int:
        # A new service is started and proven as <name>-dockhand-next, then takes its name (docs/swap.md).
        found = [e["timeNano"] for e in events.of("container", action)
                 if e.get("Actor", {}).get("Attributes", {}).get("name") in (name, name + "-dockhand-next")]
        assert found, f"no {action} event for {name}"
        return min(found)

    names = [s["name"] for s in independent]
    starts = {n: when("start", n) for n in names}
    healthy = {n: when("health_status: healthy", n) for n in names}
    # Side by side: every independent service was started before any of them had become healthy.
    assert max(starts.values()) < min(healthy.values())
    # The dependent one started only after all it depends on were healthy.
    assert when("start", dependent["name"]) > max(healthy.values())
    assert stack.run([*independent, dependent], parallelism=3).assert_ok().changed is False
