"""Scenarios: update a running service - v1 to v2 by digest with its data, start-first without a gap, a failed
stop-first update that puts v1 back, rollback without pulling, and pin: true following a tag that moves.

The module runs on this machine against lab node2's engine (docker_host); every assertion looks at that engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import EngineEvents, Registry, Service, container_names, exec_text, fingerprint, poll, served_version

pytestmark = pytest.mark.lab
NODE_INDEX = 1  # the lab node this module works on (see the node fixture)

FAST_HEALTH = {"test": ["CMD", "/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"],
               "interval": "1s", "timeout": "2s", "retries": 2, "start_period": "1s"}


@pytest.fixture
def service(lab: LabState, node: Node, engine: Any, request: pytest.FixtureRequest) -> Iterator[Service]:
    """A fresh v1 service named after the test (su-<test name>) with a named volume, removed afterwards."""
    name = "su-" + request.node.originalname.removeprefix("test_").replace("_", "-")[:40]
    made = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned, volumes=[f"{name}-data:/data"],
                   registry_username=lab.registry_username, registry_password=lab.registry_password)
    made.cleanup()
    yield made
    made.cleanup()


def test_update_v1_to_v2_by_digest_recreates_and_the_volume_data_survives(lab: LabState, service: Service) -> None:
    v1, v2 = lab.images["v1"], lab.images["v2"]
    first = service.run().assert_ok()
    old = service.container()
    exec_text(old, "echo written-by-v1 > /data/marker && sha256sum /data/marker > /data/marker.sum")
    assert served_version(old) == "v1"

    updated = service.run(image=v2.pinned, diff=True).assert_ok()
    assert updated["actions"] == ["recreate"], updated.describe()
    assert updated["changed_fields"] == ["image"]
    assert updated["diff"]["before"]["image"] == v1.pinned and updated["diff"]["after"]["image"] == v2.pinned
    assert updated["previous_image"] == v1.pinned
    assert updated["digest"] == v2.digest

    new = service.container()
    assert new.id != first["container_id"] and new.id == updated["container_id"]
    assert new.attrs["Config"]["Image"] == v2.pinned
    assert new.attrs["Image"] == service.client.images.get(v2.pinned).id
    assert new.attrs["Config"]["Labels"]["dockhand.digest"] == v2.digest
    assert new.attrs["Config"]["Labels"]["dockhand.previous-image"] == v1.pinned
    assert served_version(new) == "v2"
    assert exec_text(new, "cat /data/marker").strip() == "written-by-v1"
    assert exec_text(new, "sha256sum -c /data/marker.sum").strip().endswith("OK")
    # Only the service's own container is left: no -dockhand-next / -dockhand-prev leftovers.
    assert container_names(service.client, service.name) == {service.name}
    assert service.run(image=v2.pinned).assert_ok().changed is False


def test_start_first_update_never_leaves_the_service_without_a_healthy_container(
        lab: LabState, node: Node, service: Service) -> None:
    v2 = lab.images["v2"]
    service.run(healthcheck=FAST_HEALTH, update_strategy="start-first").assert_ok()
    old_id = service.container().id
    exec_text(service.container(), "echo before-start-first > /data/marker")
    samples: list[list[tuple[str, str]]] = []
    stop = threading.Event()

    def watch() -> None:
        # Its own client: the watcher looks at the engine while the module works on it.
        client = node.client()
        try:
            while not stop.is_set():
                listed = client.api.containers(filters={"label": f"dockhand.service={service.name}"})
                samples.append([(c["Names"][0].lstrip("/"), c["Status"]) for c in listed])
        finally:
            client.close()

    watcher = threading.Thread(target=watch, daemon=True)
    events = EngineEvents(service.client).start()
    watcher.start()
    poll("the watcher's first sample", lambda: len(samples) > 0, deadline_s=10, interval=0.05)
    try:
        updated = service.run(image=v2.pinned, healthcheck=FAST_HEALTH, update_strategy="start-first").assert_ok()
    finally:
        stop.set()
        watcher.join(10)
    events.stop()

    assert updated["actions"] == ["recreate"], updated.describe()
    new = service.container()
    assert new.id != old_id and served_version(new) == "v2"
    assert exec_text(new, "cat /data/marker").strip() == "before-start-first"
    without_healthy = [s for s in samples if not any("(healthy)" in status for _name, status in s)]
    assert samples and not without_healthy, f"{len(without_healthy)} of {len(samples)} samples had no healthy " \
                                            f"container, e.g. {without_healthy[:3]}"
    assert any(len(s) == 2 for s in samples), "the watcher never saw old and new running side by side"
    # The engine's own record of the order: the new container was healthy before the old one was stopped.
    healthy_at = [e["timeNano"] for e in events.of("container", "health_status: healthy") if e["id"] == new.id]
    old_stop_at = [e["timeNano"] for e in events.of("container") if e["id"] == old_id
                   and e["Action"] in ("kill", "die", "stop")]
    assert healthy_at and old_stop_at, (healthy_at, old_stop_at)
    assert min(healthy_at) < min(old_stop_at)


def test_stop_first_update_to_a_broken_image_fails_with_health_output_and_puts_v1_back(
        lab: LabState, service: Service) -> None:
    service.run().assert_ok()
    before = service.container()
    broken = service.run(
        image=lab.images["broken"].pinned, wait="healthy", wait_timeout=60,
        entrypoint=["/bin/sh", "-c", "echo broken-build-starting; trap 'exit 0' TERM INT; httpd -f -p 8080 -h /www & wait"],
    ).assert_failed()

    message = broken.msg
    assert "put back" in message, broken.describe()
    assert "last health check" in message and "404" in message, broken.describe()  # the check's own output
    assert "last log lines" in message and "broken-build-starting" in message, broken.describe()

    after = service.container()
    assert after.id == before.id
    assert after.attrs["State"]["Running"] is True
    assert after.attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert container_names(service.client, service.name) == {service.name}
    poll("v1 healthy again", lambda: service.container().attrs["State"]["Health"]["Status"] == "healthy")
    assert served_version(service.container()) == "v1"


def test_stop_first_update_whose_container_cannot_start_puts_v1_back(lab: LabState, service: Service) -> None:
    service.run().assert_ok()
    before = service.container()
    failed = service.run(image=lab.images["v2"].pinned, entrypoint=["/no/such/program"]).assert_failed()
    assert "put back" in failed.msg and "/no/such/program" in failed.msg, failed.describe()
    after = service.container()
    assert after.id == before.id and after.attrs["State"]["Running"] is True
    assert after.attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert container_names(service.client, service.name) == {service.name}
    assert served_version(after) == "v1"


def test_rollback_after_v1_to_v2_returns_to_v1_without_pulling(lab: LabState, service: Service) -> None:
    v1, v2 = lab.images["v1"], lab.images["v2"]
    service.run(env={"RELEASE": "one"}).assert_ok()
    exec_text(service.container(), "echo from-v1 > /data/marker")
    service.run(image=v2.pinned, env={"RELEASE": "two"}).assert_ok()
    assert served_version(service.container()) == "v2"

    events = EngineEvents(service.client).start()
    rolled = service.run(rollback=True, image=None, env=None).assert_ok()
    events.stop()

    assert rolled["actions"] == ["recreate"], rolled.describe()
    assert rolled["image"] == v1.pinned and rolled["digest"] == v1.digest
    assert rolled["previous_image"] == v2.pinned
    assert events.of("image", "pull") == []  # the v1 image was still on the host
    container = service.container()
    assert container.attrs["Config"]["Image"] == v1.pinned
    assert container.attrs["Image"] == service.client.images.get(v1.pinned).id
    assert "RELEASE=one" in container.attrs["Config"]["Env"]  # the previous settings came back, not only the image
    assert container.attrs["Config"]["Labels"]["dockhand.previous-image"] == v2.pinned
    assert served_version(container) == "v1"
    assert exec_text(container, "cat /data/marker").strip() == "from-v1"
    # Asking for the rollback again (a re-run job) must not flip back to v2.
    again = service.run(rollback=True, image=None, env=None).assert_ok()
    assert again.changed is False, again.describe()
    assert service.container().id == container.id
    # The rolled-back spec is the current one now: declaring it again changes nothing.
    assert service.run(env={"RELEASE": "one"}).assert_ok().changed is False


def test_rollback_whose_image_is_gone_from_the_host_is_refused_and_changes_nothing(
        lab: LabState, service: Service) -> None:
    tool = lab.images["tool"].pinned
    service.run(image=tool, command=["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]).assert_ok()
    service.run().assert_ok()  # now v1, with tool as the previous image
    service.client.images.remove(tool)  # e.g. pruned by a cleanup job
    before = fingerprint(service.container())
    events = EngineEvents(service.client).start()
    refused = service.run(rollback=True, image=None).assert_failed()
    events.stop()
    assert "no longer on this host" in refused.msg and tool in refused.msg, refused.describe()
    assert fingerprint(service.container()) == before
    assert events.of("image", "pull") == [] and events.of("container", "create") == []


def test_rollback_without_a_previous_deployment_is_refused(service: Service) -> None:
    service.run().assert_ok()
    before = fingerprint(service.container())
    refused = service.run(rollback=True, image=None).assert_failed()
    assert "no previous deployment" in refused.msg, refused.describe()
    assert fingerprint(service.container()) == before


# --------------------------------------------------------------------------------------------- pin: true


def test_pin_follows_a_moving_tag_and_reports_the_old_digest_as_previous(lab: LabState, service: Service) -> None:
    v1, v2 = lab.images["v1"], lab.images["v2"]
    registry = Registry(lab)
    path = v1.repo.split("/", 1)[1]
    registry.point_tag(path, "moving", v2.digest)
    moving = f"{v1.repo}:moving"

    first = service.run(image=moving, pin=True).assert_ok()
    assert first["digest"] == v2.digest and first["image"] == v2.pinned, first.describe()
    container = service.container()
    assert container.attrs["Config"]["Image"] == v2.pinned  # the digest is deployed, not the tag
    assert container.attrs["Config"]["Labels"]["dockhand.digest"] == v2.digest
    assert served_version(container) == "v2"
    assert service.run(image=moving, pin=True).assert_ok().changed is False  # tag unchanged: nothing to do

    registry.point_tag(path, "moving", v1.digest)
    assert registry.tag_digest(path, "moving") == v1.digest
    moved = service.run(image=moving, pin=True).assert_ok()
    assert moved["actions"] == ["recreate"], moved.describe()
    assert moved["digest"] == v1.digest and moved["image"] == v1.pinned
    assert moved["previous_image"] == v2.pinned
    container = service.container()
    assert container.id != first["container_id"]
    assert container.attrs["Config"]["Image"] == v1.pinned
    assert container.attrs["Config"]["Labels"]["dockhand.previous-image"] == v2.pinned
    assert served_version(container) == "v1"


def test_update_interrupted_mid_swap_is_recovered_with_its_data(service: Service) -> None:
    # A run killed between "stop and park the old container" and "start the new one" leaves the old one
    # under <name>-dockhand-prev and nothing under <name>: the next run must bring that container back.
    first = service.run().assert_ok()
    old = service.container()
    exec_text(old, "echo before-the-crash > /data/marker")
    old.stop(timeout=1)
    old.rename(service.name + "-dockhand-prev")

    again = service.run().assert_ok()
    # ansible-core 2.19 returns warnings as structured events: look for the text anywhere in them.
    assert "recovered its container from an interrupted update" in repr(again.data.get("warnings")), again.describe()
    recovered = service.container()
    assert recovered.id == first["container_id"]
    assert recovered.status == "running"
    assert exec_text(recovered, "cat /data/marker").strip() == "before-the-crash"
    assert container_names(service.client, service.name) == {service.name}
