"""Scenario: bad inputs are refused with a message naming the field, and nothing changes on the engine.

Each case runs twice against lab node3's engine (docker_host): once against a running service it would
update (that container must be untouched: same ID, start time, config), once as a new service (no container
and no volume may appear). Engine events recorded during each run prove no container or volume was created,
renamed, stopped or removed.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import EngineEvents, Service, fingerprint

pytestmark = pytest.mark.lab
NODE_INDEX = 2  # the lab node this module works on (see the node fixture)

PREFIX = "sb"
BASE = f"{PREFIX}-base"
BASE_PORT = "18500:8080"  # published inside node3's network namespace only


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released, so no registry can be there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Case:
    id: str
    changes: dict[str, Any]
    expected: tuple[str, ...]  # fragments the message must contain (the field, the bad value, the reason)
    against_new: bool = True  # also try it as a brand-new service


def cases(lab: LabState) -> list[Case]:
    repo = lab.images["v1"].repo
    down = f"127.0.0.1:{closed_port()}"
    unknown_digest = "sha256:" + secrets.token_hex(32)
    return [
        Case("malformed-digest", {"image": f"{repo}@sha256:12345"}, ("image", "malformed digest", "sha256:12345")),
        Case("digest-not-in-registry", {"image": f"{repo}@{unknown_digest}"},
             ("image", unknown_digest, "not found", "image_digest")),
        Case("tag-without-pin", {"image": lab.images["v1"].tagged}, ("image", "not pinned by digest", "pin=true")),
        # Left to the Engine (log-driver plugins exist), which refuses it when the new container is created; its
        # plugin lookup retries for about 15 s, so this case runs against the running service only.
        Case("unknown-log-driver", {"log_driver": "splunkish"}, ("logging plugin splunkish", "not found"),
             against_new=False),
        Case("option-not-valid-for-driver", {"log_driver": "json-file", "log_options": {"syslog-address": "udp://127.0.0.1:514"}},
             ("log_options.syslog-address", "json-file")),
        Case("invalid-option-value", {"log_options": {"max-size": "lots"}}, ("log_options.max-size", "lots")),
        # The Engine reads MaximumRetryCount=0 as "no limit": 0 would mean a crash loop forever.
        Case("restart-retries-zero", {"restart_policy": "on-failure", "restart_retries": 0},
             ("restart_retries", "restart_policy=no")),
        Case("restart-retries-with-always", {"restart_policy": "always", "restart_retries": 3},
             ("restart_retries", "restart_policy=on-failure", "always")),
        Case("volume-name-illegal-characters", {"volumes": [f"{BASE}-data:/data", "bad$name:/extra"]},
             ("volumes", "volume name", "bad$name")),
        Case("bind-source-missing", {"volumes": [f"{BASE}-data:/data", "/nonexistent/dockhand-test:/extra"]},
             ("bind source", "/nonexistent/dockhand-test", "does not exist")),
        Case("port-clash-with-start-first", {"image": lab.images["v2"].pinned, "update_strategy": "start-first"},
             ("start-first", "18500"), against_new=False),
        Case("negative-wait-timeout", {"wait_timeout": -1}, ("wait_timeout", "-1")),
        Case("negative-stop-timeout", {"stop_timeout": -1}, ("stop_timeout", "-1")),
        Case("registry-down", {"image": f"{down}/dockhand/app@{lab.images['v1'].digest}"}, (down, "refused")),
        Case("registry-down-with-pin", {"image": f"{down}/dockhand/app:v1", "pin": True}, (down, "unreachable")),
    ]


@pytest.fixture(scope="module")
def base(lab: LabState, node: Node, engine: Any) -> Iterator[Service]:
    """A running v1 service publishing a fixed host port: what every bad update is tried against."""
    service = Service(BASE, node.docker_host, engine, image=lab.images["v1"].pinned, ports=[BASE_PORT],
                      volumes=[f"{BASE}-data:/data"], registry_username=lab.registry_username,
                      registry_password=lab.registry_password)
    _remove_prefixed(engine)
    service.run().assert_ok()
    yield service
    _remove_prefixed(engine)


def _remove_prefixed(engine: Any) -> None:
    for container in engine.containers.list(all=True, ignore_removed=True):
        if container.name.startswith(PREFIX + "-"):
            container.remove(force=True)
    for volume in engine.volumes.list():
        if volume.name.startswith(PREFIX + "-"):
            volume.remove(force=True)


def _case(lab: LabState, case_id: str) -> Case:
    return next(c for c in cases(lab) if c.id == case_id)


ALL_CASES = ["malformed-digest", "digest-not-in-registry", "tag-without-pin", "unknown-log-driver",
             "option-not-valid-for-driver", "invalid-option-value", "restart-retries-zero", "restart-retries-with-always",
             "volume-name-illegal-characters", "bind-source-missing", "port-clash-with-start-first",
             "negative-wait-timeout", "negative-stop-timeout", "registry-down", "registry-down-with-pin"]


def _snapshot(engine: Any) -> tuple[set[str], set[str], set[str]]:
    """Every container, volume and image on the engine."""
    return ({c.name for c in engine.containers.list(all=True, ignore_removed=True)}, {v.name for v in engine.volumes.list()},
            {i.id for i in engine.images.list(all=True)})


# The engine's own health checks show up as exec events on the running service; they are not the module's doing.
HEALTH_CHECK_ACTIONS = ("exec_create", "exec_start", "exec_die", "health_status")


def _assert_nothing_happened(events: EngineEvents) -> None:
    # A run that reaches the Engine takes the service's lock (a container made and removed again): not a change.
    touched = [(e["Type"], e["Action"], e.get("Actor", {}).get("Attributes", {}).get("name"))
               for kind in ("container", "volume", "network") for e in events.of(kind)
               if not e["Action"].startswith(HEALTH_CHECK_ACTIONS)
               and not str(e.get("Actor", {}).get("Attributes", {}).get("name", "")).endswith("-dockhand-lock")]
    assert touched == [], f"the engine saw changes: {touched}"


@pytest.mark.parametrize("case_id", ALL_CASES)
def test_bad_input_against_a_running_service_is_refused_and_leaves_it_untouched(
        lab: LabState, engine: Any, base: Service, case_id: str) -> None:
    case = _case(lab, case_id)
    before = fingerprint(base.container())
    containers, volumes, images = _snapshot(engine)
    events = EngineEvents(engine).start()
    result = base.run(**case.changes).assert_failed()
    events.stop()

    for fragment in case.expected:
        assert fragment in result.msg, f"{fragment!r} missing from the message\n{result.describe()}"
    assert "Traceback" not in result.msg and "Traceback" not in result.stderr, result.describe()
    assert fingerprint(base.container()) == before
    assert _snapshot(engine) == (containers, volumes, images)
    _assert_nothing_happened(events)


@pytest.mark.parametrize("case_id", [c for c in ALL_CASES if c not in ("port-clash-with-start-first",
                                                                       "unknown-log-driver")])
def test_bad_input_for_a_new_service_is_refused_and_creates_nothing(
        lab: LabState, node: Node, engine: Any, base: Service, case_id: str) -> None:
    case = _case(lab, case_id)
    name = f"{PREFIX}-new-{case_id}"[:60]
    fresh = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned,
                    volumes=[f"{name}-data:/data"], registry_username=lab.registry_username,
                    registry_password=lab.registry_password)
    changes = dict(case.changes)
    if "volumes" in changes:  # the case's own bad mount next to this service's named volume
        changes["volumes"] = [f"{name}-data:/data"] + changes["volumes"][1:]
    containers, volumes, images = _snapshot(engine)
    events = EngineEvents(engine).start()
    result = fresh.run(**changes).assert_failed()
    events.stop()

    for fragment in case.expected:
        assert fragment in result.msg, f"{fragment!r} missing from the message\n{result.describe()}"
    assert fresh.maybe_container() is None
    assert f"{name}-data" not in {v.name for v in engine.volumes.list()}
    assert _snapshot(engine) == (containers, volumes, images)
    _assert_nothing_happened(events)


# --------------------------------------------------------------------------------------------- bind sources and docker_host
# With docker_host the module runs on one machine and the engine on another (here: this machine and node3's
# container). A bind source is a path on the engine's machine.


def test_bind_source_missing_on_the_engine_host_is_refused_before_anything_is_created(
        lab: LabState, node: Node, engine: Any, base: Service) -> None:
    name = f"{PREFIX}-bind-elsewhere"
    here_only = str(lab.dir / "registry")  # exists on this machine, not inside node3
    fresh = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned,
                    volumes=[f"{name}-data:/data", f"{here_only}:/extra"], registry_username=lab.registry_username,
                    registry_password=lab.registry_password)
    fresh.cleanup()
    try:
        containers, volumes, images = _snapshot(engine)
        result = fresh.run().assert_failed()
        assert "bind source" in result.msg and here_only in result.msg, result.describe()
        assert fresh.maybe_container() is None
        assert _snapshot(engine) == (containers, volumes, images), "the named volume was created anyway"
    finally:
        fresh.cleanup()


def test_bind_source_present_on_the_engine_host_is_accepted(lab: LabState, node: Node, engine: Any,
                                                            base: Service) -> None:
    name = f"{PREFIX}-bind-on-node"
    fresh = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned,
                    volumes=["/lab:/lab:ro"], registry_username=lab.registry_username,
                    registry_password=lab.registry_password)
    fresh.cleanup()
    try:
        assert not Path("/lab").exists()  # the premise: only the engine's machine has /lab
        result = fresh.run().assert_ok()
        mounts = [(m["Type"], m["Source"], m["Destination"], m["RW"]) for m in fresh.container().attrs["Mounts"]]
        assert mounts == [("bind", "/lab", "/lab", False)], result.describe()
    finally:
        fresh.cleanup()
