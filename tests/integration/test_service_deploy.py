"""Scenarios: deploy a service by digest and keep it converged - idempotence, check mode, in-place restart
policy changes, a crash loop that stops, state transitions.

The module runs on this machine and talks to lab node1's own engine through its socket (docker_host), which
is also where every assertion looks: docker inspect facts, files inside the named volume, RestartCount.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import EngineEvents, Service, exec_text, fingerprint, poll

pytestmark = pytest.mark.lab
NODE_INDEX = 0  # the lab node this module works on (see the node fixture)


def make_service(lab: LabState, node: Node, engine: Any, name: str) -> Service:
    service = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned,
                      volumes=[f"{name}-data:/data"], registry_username=lab.registry_username,
                      registry_password=lab.registry_password)
    service.cleanup()
    return service


@pytest.fixture
def service(lab: LabState, node: Node, engine: Any, request: pytest.FixtureRequest) -> Iterator[Service]:
    """A fresh service named after the test (sd-<test name>), removed with its volume afterwards."""
    name = "sd-" + request.node.originalname.removeprefix("test_").replace("_", "-")[:40]
    made = make_service(lab, node, engine, name)
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def deployed(lab: LabState, node: Node, engine: Any) -> Iterator[tuple[Service, Any]]:
    """One v1 deployment shared by the scenarios that must leave it as it is (inspect, idempotence, check mode)."""
    made = make_service(lab, node, engine, "sd-web")
    first = made.run().assert_ok()
    yield made, first
    made.cleanup()


def test_deploy_v1_by_digest_runs_that_image_with_rotating_logs_restart_limit_and_volume(
        lab: LabState, engine: Any, deployed: tuple[Service, Any]) -> None:
    service, first = deployed
    v1 = lab.images["v1"]
    assert first.changed and first["actions"] == ["create"], first.describe()
    container = service.container()
    attrs = container.attrs
    assert attrs["State"]["Running"] is True
    assert attrs["State"]["Health"]["Status"] == "healthy"  # wait=auto waited for the image's health check
    assert attrs["Config"]["Image"] == v1.pinned
    assert attrs["Image"] == engine.images.get(v1.pinned).id
    assert attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert attrs["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    volumes = [(m["Type"], m["Name"], m["Destination"], m["RW"]) for m in attrs["Mounts"]]
    assert volumes == [("volume", service.volume, "/data", True)]
    labels = attrs["Config"]["Labels"]
    assert labels["dockhand.digest"] == v1.digest
    assert labels["dockhand.service"] == service.name
    assert labels["dockhand.managed"] == "true"
    assert "dockhand.previous-image" not in labels
    # What the module reports is what the engine runs.
    assert first["container_id"] == container.id
    assert first["image"] == v1.pinned and first["digest"] == v1.digest
    assert first["state"] == "started" and first["health"] == "healthy"
    assert exec_text(container, "wget -q -O - http://127.0.0.1:8080/version").strip() == "v1"


def test_second_run_with_the_same_spec_changes_nothing(deployed: tuple[Service, Any]) -> None:
    service = deployed[0]
    before = fingerprint(service.container())
    second = service.run(diff=True).assert_ok()
    assert second.changed is False, second.describe()
    assert second["actions"] == [] and second["changed_fields"] == []
    assert second["diff"] == {"before": {}, "after": {}}
    assert second["container_id"] == before["id"]
    assert fingerprint(service.container()) == before


def test_check_mode_on_a_changed_spec_predicts_the_recreate_and_touches_nothing(
        lab: LabState, deployed: tuple[Service, Any]) -> None:
    service = deployed[0]
    before = fingerprint(service.container())
    events = EngineEvents(service.client).start()
    predicted = service.run(check=True, diff=True, image=lab.images["v2"].pinned, env={"GREETING": "hello"},
                            log_options={"max-size": "1m", "max-file": "2"}).assert_ok()
    events.stop()
    assert predicted.changed is True, predicted.describe()
    assert predicted["actions"] == ["recreate"]
    assert set(predicted["changed_fields"]) == {"image", "env", "log_config"}
    diff = predicted["diff"]
    assert diff["before"]["image"] == lab.images["v1"].pinned
    assert diff["after"]["image"] == lab.images["v2"].pinned
    assert diff["before"]["env"] == {} and diff["after"]["env"] == {"GREETING": "hello"}
    assert diff["after"]["log_config"] == {"driver": "json-file", "options": {"max-size": "1m", "max-file": "2"}}
    assert predicted["image"] == lab.images["v2"].pinned
    # Nothing happened on the engine: same container, same config, nothing pulled, created or removed.
    assert fingerprint(service.container()) == before
    assert events.of("image") == []
    # Only this service's containers count (other test modules share the node), and not their health checks
    # (exec events every 2 s), which are the Engine's doing.
    assert [e for e in events.of("container") if e["Actor"]["Attributes"].get("name", "").startswith(service.name)
            and not e["Action"].startswith(("exec_", "health_status"))] == []
    assert [e for e in events.of("volume") if e["Actor"]["ID"].startswith(service.name)] == []


def test_restart_policy_change_updates_the_running_container_in_place_without_restart(service: Service) -> None:
    service.run().assert_ok()
    before = fingerprint(service.container())

    updated = service.run(restart_policy="unless-stopped", diff=True).assert_ok()
    assert updated.changed and updated["actions"] == ["update"], updated.describe()
    assert updated["changed_fields"] == ["restart_policy"]
    assert updated["diff"]["before"]["restart_policy"] == {"name": "on-failure", "retries": 5}
    assert updated["diff"]["after"]["restart_policy"] == {"name": "unless-stopped", "retries": 0}
    after = fingerprint(service.container())
    assert after["restart_policy"]["Name"] == "unless-stopped"
    assert after["id"] == before["id"]
    assert after["started_at"] == before["started_at"]  # not restarted
    assert after["restart_count"] == before["restart_count"]

    # The in-place change is remembered: the same spec again is a no-op.
    again = service.run(restart_policy="unless-stopped").assert_ok()
    assert again.changed is False, again.describe()

    # Retries alone are also changed in place.
    retries = service.run(restart_policy="on-failure", restart_retries=2).assert_ok()
    assert retries["actions"] == ["update"], retries.describe()
    final = fingerprint(service.container())
    assert final["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert final["id"] == before["id"] and final["started_at"] == before["started_at"]


def test_crash_loop_with_on_failure_3_stops_after_three_restarts(service: Service) -> None:
    crashed = service.run(entrypoint=["/bin/sh", "-c"], command=["echo crashing; exit 1"],
                          healthcheck={"disable": True}, restart_policy="on-failure", restart_retries=3,
                          wait="none").assert_ok()
    assert crashed["actions"] == ["create"], crashed.describe()
    container = service.container()
    assert container.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}

    def gave_up() -> bool:
        container.reload()
        state = container.attrs["State"]
        return container.attrs["RestartCount"] == 3 and state["Status"] == "exited" and not state["Restarting"]

    poll("the engine gave up restarting after 3 restarts", gave_up, deadline_s=120)
    container.reload()
    assert container.attrs["State"]["ExitCode"] == 1
    finished_at = container.attrs["State"]["FinishedAt"]
    # It stays down: give the engine the chance a 4th restart would need (backoff is 800 ms by then), then look again.
    poll("a moment past the next backoff", lambda: _past_backoff(container, finished_at), deadline_s=10)
    container.reload()
    assert container.attrs["RestartCount"] == 3
    assert container.attrs["State"]["Status"] == "exited"
    assert container.attrs["State"]["FinishedAt"] == finished_at
    assert "crashing" in container.logs().decode()


def _past_backoff(container: Any, finished_at: str) -> bool:
    """True once 2 s have passed on the engine's clock since the container last finished."""
    from datetime import datetime, timezone

    finished = datetime.fromisoformat(finished_at[:26].rstrip("Z") + "+00:00")
    return (datetime.now(timezone.utc) - finished).total_seconds() > 2


def test_state_stopped_started_absent_and_the_named_volume_outlives_the_container(service: Service) -> None:
    started = service.run().assert_ok()
    container = service.container()
    exec_text(container, "echo kept > /data/marker")

    stopped = service.run(state="stopped").assert_ok()
    assert stopped["actions"] == ["stop"] and stopped["state"] == "stopped", stopped.describe()
    container.reload()
    assert container.id == started["container_id"]
    assert container.attrs["State"]["Running"] is False
    assert service.run(state="stopped").assert_ok().changed is False

    restarted = service.run(state="started").assert_ok()
    assert restarted["actions"] == ["start"] and restarted["state"] == "started", restarted.describe()
    container.reload()
    assert container.id == started["container_id"]
    assert container.attrs["State"]["Running"] is True
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    assert exec_text(container, "cat /data/marker").strip() == "kept"

    removed = service.run(state="absent").assert_ok()
    assert removed["actions"] == ["remove"] and removed["state"] == "absent", removed.describe()
    assert service.maybe_container() is None
    assert service.client.volumes.get(service.volume).name == service.volume  # volumes are never removed
    assert service.run(state="absent").assert_ok().changed is False

    # A new deployment finds the data again.
    again = service.run().assert_ok()
    assert again["actions"] == ["create"]
    assert exec_text(service.container(), "cat /data/marker").strip() == "kept"


def test_present_creates_without_starting(service: Service) -> None:
    present = service.run(state="present").assert_ok()
    assert present["actions"] == ["create"] and present["state"] == "stopped", present.describe()
    container = service.container()
    assert container.attrs["State"]["Status"] == "created"
    assert service.run(state="present").assert_ok().changed is False


def test_always_on_an_image_without_a_health_check_warns(lab: LabState, service: Service) -> None:
    result = service.run(image=lab.images["tool"].pinned, command=["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                         restart_policy="always").assert_ok()
    assert any("restart_policy=always without a health check" in w for w in result.warnings), result.describe()
    attrs = service.container().attrs
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert "Healthcheck" not in attrs["Config"]
    # With a health check there is nothing to warn about.
    checked = service.run(restart_policy="always").assert_ok()
    assert checked["actions"] == ["recreate"], checked.describe()
    assert not any("restart_policy=always" in w for w in checked.warnings), checked.describe()


def test_always_with_the_health_check_disabled_warns(service: Service) -> None:
    result = service.run(restart_policy="always", healthcheck={"disable": True}).assert_ok()
    attrs = service.container().attrs
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert attrs["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert any("restart_policy=always without a health check" in w for w in result.warnings), result.describe()
