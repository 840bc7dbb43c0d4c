"""Scenarios: what `docker run`, `docker update` and community.docker accept, the service module accepts and applies
the same way, and what it reports is true.

- restart policy, memory and cpus change on the running container (no restart), and that is not drift afterwards;
  a manual `docker update` still is; removing a limit needs a new container and the diff says why
- ports as `docker run -p` takes them: no host port (the Engine picks one, returned), ranges, `ip::target`, IPv6, udp
- mounts with `ro,z`, bind propagation, tmpfs_mode; logging drivers the Engine has, sizes as the Engine reads them
- refused before anything changes (events-checked): YAML-mangled env/labels, an image ID, two items or two services of
  a stack on one host port, an option of a driver the collection leaves to the Engine (refused by the Engine itself;
  test_service_bad_inputs has a driver the Engine does not have)
- stack prune stops a container with its own stop_timeout; the restart_policy=always warning only when it applies

Most scenarios run against lab node3's engine (docker_host); the ports scenario runs against this machine's engine
(the nodes have no IPv6), on host ports 19300-19399.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import EngineEvents, Service, exec_text, fingerprint, remove_service_objects, run_module

pytestmark = pytest.mark.lab
NODE_INDEX = 2  # the lab node this module works on (see the node fixture)

PREFIX = "pc"
STOPS_AT_ONCE = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
# The engine's own health checks show up as exec events on a running container; they are not the module's doing.
HEALTH_CHECK_ACTIONS = ("exec_create", "exec_start", "exec_die", "health_status")


def _service(lab: LabState, docker_host: str, engine: Any, name: str, image: str = "tool", **defaults: Any) -> Service:
    defaults.setdefault("command", STOPS_AT_ONCE if image == "tool" else None)
    made = Service(name, docker_host, engine, image=lab.images[image].pinned, registry_username=lab.registry_username,
                   registry_password=lab.registry_password, **{k: v for k, v in defaults.items() if v is not None})
    made.cleanup()
    return made


@pytest.fixture
def service(lab: LabState, node: Node, engine: Any, request: pytest.FixtureRequest) -> Iterator[Service]:
    """A tool-image service named after the test (pc-<test name>), removed afterwards."""
    name = f"{PREFIX}-" + request.node.originalname.removeprefix("test_").replace("_", "-")[:40]
    made = _service(lab, node.docker_host, engine, name)
    yield made
    made.cleanup()


def info(node: Node, name: str) -> dict[str, Any]:
    result = run_module("service_info", dict(docker_host=node.docker_host, name=[name])).assert_ok()
    (found,) = result["services"]
    return dict(found)


def engine_changes(events: EngineEvents) -> list[tuple[str, str, str]]:
    """Events on this module's containers, volumes and networks (other test modules share the engine)."""
    found = []
    for kind in ("container", "volume", "network"):
        for event in events.of(kind):
            actor = event.get("Actor", {})
            name = actor.get("ID", "") if kind == "volume" else actor.get("Attributes", {}).get("name", "")
            # The service's lock (a container made and removed again around a change) is no change itself.
            if name.startswith(PREFIX + "-") and not name.endswith("-dockhand-lock") \
                    and not event["Action"].startswith(HEALTH_CHECK_ACTIONS):
                found.append((kind, event["Action"], name))
    return found


# --------------------------------------------------------------------------------------------- in place, and drift


def test_restart_policy_memory_and_cpus_change_in_place_and_are_not_drift_but_a_manual_update_is(
        node: Node, service: Service) -> None:
    service.run(restart_retries=3, memory="64m", memory_reservation="32m", cpus=0.5).assert_ok()
    before = service.container().attrs
    limits: dict[str, Any] = dict(restart_retries=4, memory="128m", memory_reservation="48m", cpus=1.0)
    updated = service.run(diff=True, **limits).assert_ok()
    assert updated["actions"] == ["update"], updated.describe()
    assert sorted(updated["changed_fields"]) == ["cpus", "memory", "memory_reservation", "restart_policy"]
    after = service.container().attrs
    assert (after["Id"], after["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"])
    host = after["HostConfig"]
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 4}
    assert (host["Memory"], host["MemoryReservation"], host["NanoCpus"]) == (128 << 20, 48 << 20, 10**9)
    assert host["MemorySwap"] in (0, 256 << 20)  # twice the memory, as a new container gets, where swap is limited
    assert service.run(**limits).assert_ok().changed is False
    reported = info(node, service.name)
    assert reported["drift"] == [], reported

    service.container().update(restart_policy={"Name": "always"})  # `docker update --restart always` by hand
    assert info(node, service.name)["drift"] == ["restart_policy"]
    repaired = service.run(**limits).assert_ok()
    assert repaired["actions"] == ["update"] and service.container().id == before["Id"]
    assert info(node, service.name)["drift"] == []


def test_removing_a_memory_limit_needs_a_new_container_and_the_diff_says_why(service: Service) -> None:
    service.run(memory="64m").assert_ok()
    old_id = service.container().id
    replaced = service.run(diff=True).assert_ok()
    assert replaced["actions"] == ["recreate"], replaced.describe()
    assert any(reason.startswith("memory: the Engine cannot remove a memory limit")
               for reason in replaced["diff"]["after"]["recreate_reason"]), replaced.describe()
    new = service.container()
    assert new.id != old_id and new.attrs["HostConfig"]["Memory"] == 0


def test_a_limit_the_running_container_cannot_take_recreates_it_and_says_why(engine: Any, service: Service) -> None:
    # cgroup v1 refuses a memory limit below what the cgroup uses when there is no swap to push it to
    # (cgroup v2 would OOM-kill instead, as `docker update` does there too).
    swap = Path("/proc/swaps").read_text().strip().splitlines()[1:]
    if engine.info().get("CgroupVersion") != "1" or swap:
        pytest.skip("needs cgroup v1 without swap, where the kernel refuses the lower limit")
    service.run(memory="64m").assert_ok()
    old = service.container()
    # 24 MB in its /dev/shm (tmpfs, charged to its memory cgroup; this host has no swap to push it to).
    exec_text(old, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null")
    replaced = service.run(memory="16m", diff=True).assert_ok()
    assert replaced["actions"] == ["recreate"], replaced.describe()
    assert any(reason.startswith("memory: the running container refused the update")
               for reason in replaced["diff"]["after"]["recreate_reason"]), replaced.describe()
    new = service.container()
    assert new.id != old.id and new.attrs["HostConfig"]["Memory"] == 16 << 20
    assert new.attrs["State"]["Running"] is True
    assert service.run(memory="16m").assert_ok().changed is False


# --------------------------------------------------------------------------------------------- as docker run takes them


def test_ports_as_docker_run_takes_them_and_the_engine_chosen_port_is_returned(lab: LabState) -> None:
    import docker

    client = docker.DockerClient(base_url=lab.local_docker_host)
    try:
        made = _service(lab, lab.local_docker_host, client, f"{PREFIX}-ports", ports=[
            "9001", "127.0.0.1::9002", "19300-19301:9300-9301", "[::1]:19302:9003", "127.0.0.1:19303:9004/udp",
            "127.0.0.1:19310-19319:9005"])
        try:
            result = made.run().assert_ok()
            published = made.container().attrs["NetworkSettings"]["Ports"]
            # The Engine picks a port per address family, usually the same one; Engine 20.10 picks another for
            # IPv6 when IPv4's is taken (seen in CI: 32769 and 32768). Every binding it shows must be returned.
            chosen = {(b["HostIp"], b["HostPort"]) for b in published["9001/tcp"]}
            assert chosen and all(port for _ip, port in chosen), published
            assert published["9002/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": published["9002/tcp"][0]["HostPort"]}]
            assert published["9002/tcp"][0]["HostPort"] != ""
            assert {b["HostPort"] for b in published["9300/tcp"]} == {"19300"}
            assert {b["HostPort"] for b in published["9301/tcp"]} == {"19301"}
            assert published["9003/tcp"] == [{"HostIp": "::1", "HostPort": "19302"}]
            assert published["9004/udp"] == [{"HostIp": "127.0.0.1", "HostPort": "19303"}]
            assert 19310 <= int(published["9005/tcp"][0]["HostPort"]) <= 19319
            returned = {(p["target"], p["protocol"], p["host_ip"], p["published"]) for p in result["ports"]}
            for host_ip, port in chosen:
                assert (9001, "tcp", host_ip, int(port)) in returned, result["ports"]
            assert (9004, "udp", "127.0.0.1", 19303) in returned
            assert made.run().assert_ok().changed is False
        finally:
            made.cleanup()
    finally:
        client.close()


def test_mounts_with_selinux_label_propagation_read_only_volume_and_tmpfs_mode(service: Service) -> None:
    volumes = [f"{service.name}-data:/data:ro", "/lab:/lab:ro,z",
               {"type": "bind", "source": "/lab", "target": "/lab-private", "propagation": "rprivate"},
               {"type": "tmpfs", "target": "/scratch", "tmpfs_mode": "1770", "tmpfs_size": "8m"}]
    service.run(volumes=volumes).assert_ok()
    container = service.container()
    host = container.attrs["HostConfig"]
    assert host["Binds"] == ["/lab:/lab:ro,z"]
    by_target = {m["Target"]: m for m in host["Mounts"]}
    assert by_target["/lab-private"]["BindOptions"] == {"Propagation": "rprivate"}
    assert by_target["/data"]["ReadOnly"] is True
    assert exec_text(container, "stat -c %a /scratch").strip() == "1770"
    code, _output = container.exec_run(["sh", "-c", "touch /data/x"])
    assert code != 0, "the read-only volume took a write"
    assert service.run(volumes=volumes).assert_ok().changed is False


def test_logging_sizes_as_the_engine_reads_them_and_drivers_the_collection_does_not_check(service: Service) -> None:
    service.run(log_options={"max-size": "10M", "max-file": "2"}).assert_ok()
    assert service.container().attrs["HostConfig"]["LogConfig"] == {
        "Type": "json-file", "Config": {"max-size": "10M", "max-file": "2"}}
    service.run(state="stopped", log_options={"max-size": "10M", "max-file": "2"}).assert_ok()
    # Not started: the awslogs driver would want AWS; creating the container is the Engine accepting the driver.
    created = service.run(state="present", log_driver="awslogs",
                          log_options={"awslogs-region": "eu-west-1", "awslogs-group": "pc", "mode": "non-blocking"}).assert_ok()
    assert created["actions"] == ["recreate"], created.describe()
    assert service.container().attrs["HostConfig"]["LogConfig"]["Type"] == "awslogs"


# --------------------------------------------------------------------------------------------- refused, nothing changes


@pytest.fixture(scope="module")
def running(lab: LabState, node: Node, engine: Any) -> Iterator[Service]:
    made = _service(lab, node.docker_host, engine, f"{PREFIX}-running", ports=["19320:8080"])
    made.run().assert_ok()
    yield made
    made.cleanup()


@pytest.mark.parametrize("changes, expected", [
    (dict(env={"DEBUG": True}), ("env.DEBUG", "boolean", "quote")),
    (dict(labels={"release": 1.1}), ("labels.release", "1.1", "quote")),
    (dict(image="sha256:" + "ab" * 32), ("image ID", "repo@sha256:")),
    (dict(ports=["19320:8080", "19320:9000"]), ("'19320:8080'", "'19320:9000'", "host port 19320/tcp")),
    (dict(log_driver="awslogs", log_options={"awslogs-region": "eu-west-1", "awslogs-group": "pc", "awslogs-bogus": "x"}),
     ("awslogs-bogus",)),
], ids=["env-boolean", "label-float", "image-id", "same-host-port-twice",
        "unknown-option-of-an-unchecked-driver"])
def test_refused_before_anything_changes(engine: Any, running: Service, changes: dict[str, Any],
                                         expected: tuple[str, ...]) -> None:
    before = fingerprint(running.container())
    events = EngineEvents(engine).start()
    refused = running.run(**changes).assert_failed()
    events.stop()
    for fragment in expected:
        assert fragment in refused.msg, f"{fragment!r} missing\n{refused.describe()}"
    assert "pin=true" not in refused.msg
    assert fingerprint(running.container()) == before
    assert engine_changes(events) == []


# --------------------------------------------------------------------------------------------- stack


@pytest.fixture
def stack_name(engine: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"{PREFIX}-" + request.node.originalname.removeprefix("test_").split("_")[0]
    remove_service_objects(engine, name)
    yield name
    remove_service_objects(engine, name)


def run_stack(lab: LabState, node: Node, name: str, services: list[dict[str, Any]], **extra: Any) -> Any:
    items = [dict(image=lab.images["tool"].pinned, command=STOPS_AT_ONCE, **s) for s in services]
    return run_module("stack", dict(name=name, services=items, docker_host=node.docker_host,
                                    registry_username=lab.registry_username,
                                    registry_password=lab.registry_password, **extra))


def test_duplicate_host_port_between_two_services_is_refused_before_anything_changes(
        lab: LabState, node: Node, engine: Any, stack_name: str) -> None:
    first = dict(name=f"{stack_name}-a", ports=["19330:8080"])
    run_stack(lab, node, stack_name, [first]).assert_ok()
    before = fingerprint(engine.containers.get(first["name"]))
    events = EngineEvents(engine).start()
    refused = run_stack(lab, node, stack_name, [first, dict(name=f"{stack_name}-b", ports=["0.0.0.0:19330:9000"])])
    events.stop()
    refused.assert_failed()
    assert refused.msg.startswith(f"stack {stack_name}: ports: service {stack_name}-a '19330:8080' and service "
                                  f"{stack_name}-b '0.0.0.0:19330:9000' both publish host port 19330/tcp"), refused.msg
    assert fingerprint(engine.containers.get(first["name"])) == before
    assert engine_changes(events) == []

    bad_item = run_stack(lab, node, stack_name, [first, dict(name=f"{stack_name}-b", stop_timeout=-1)]).assert_failed()
    assert bad_item.msg.startswith(f"stack {stack_name}: service {stack_name}-b: stop_timeout"), bad_item.msg


def test_prune_stops_a_container_with_its_own_stop_timeout(
        lab: LabState, node: Node, engine: Any, stack_name: str) -> None:
    # Exits cleanly 3 s after SIGTERM: a 1 s stop_timeout means the Engine kills it first (exit 137).
    slow = dict(name=f"{stack_name}-slow", stop_timeout=1,
                command=["sh", "-c", "trap 'sleep 3; exit 0' TERM; while true; do sleep 1; done"])
    keep = dict(name=f"{stack_name}-keep")
    items = [dict(image=lab.images["tool"].pinned, command=STOPS_AT_ONCE, **keep),
             dict(image=lab.images["tool"].pinned, **slow)]
    args = dict(name=stack_name, docker_host=node.docker_host, registry_username=lab.registry_username,
                registry_password=lab.registry_password)
    run_module("stack", dict(args, services=items)).assert_ok()
    slow_id = engine.containers.get(slow["name"]).id
    events = EngineEvents(engine).start()
    pruned = run_module("stack", dict(args, services=items[:1], prune=True)).assert_ok()
    events.stop()
    assert pruned["pruned"] == [slow["name"]]
    died = [e["Actor"]["Attributes"]["exitCode"] for e in events.of("container", "die") if e["id"] == slow_id]
    assert died == ["137"], died


def test_restart_policy_always_warning_only_when_the_container_is_made(service: Service) -> None:
    settings: dict[str, Any] = dict(restart_policy="always", healthcheck={"disable": True})
    first = service.run(**settings).assert_ok()
    assert any("restart_policy=always" in w for w in first.warnings), first.describe()
    again = service.run(**settings).assert_ok()
    assert again.changed is False and again.warnings == [], again.describe()
