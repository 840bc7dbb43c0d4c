"""The plan step of _converge over a recorded engine state: ``fixtures/service-container.json`` is
``docker inspect`` of a container the service module created on a lab node (see its ``dockhand.spec`` label for
the spec), so these tests read exactly what the Engine reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Optional

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.dockhand.containers.plugins.module_utils._converge import (
    ConvergeError, _policy_warnings, plan_service,
)
from ansible_collections.dockhand.containers.plugins.module_utils._record import (
    LABEL_PREVIOUS_SPEC, LABEL_SPEC, LABEL_SPEC_HASH, UPDATES_PATH, read_record, spec_hash, updates_archive,
)
from ansible_collections.dockhand.containers.plugins.module_utils._service_spec import ServiceSpec, service_options

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "service-container.json").read_text())
LABELS = RECORDED["Config"]["Labels"]
SPEC = json.loads(LABELS[LABEL_SPEC])
# The module arguments that made the recorded container (the secret's value is only in its Env).
ARGS = dict(name=RECORDED["Name"].lstrip("/"), image=SPEC["image"], ports=["19340:8080", "9001"],
            volumes=["pc-recorded-data:/data"], env={"MODE": "demo"}, secret_env={"TOKEN": "s3cret"}, memory="64m",
            restart_retries=3)


class RecordedEngine:
    """The Engine as far as planning reads it: inspect answers from the recording, nothing else."""

    def __init__(self, container: Optional[dict[str, Any]], files: Optional[dict[str, bytes]] = None) -> None:
        self.recorded = container
        self.files = files or {}
        self.calls: list[str] = []

    def container(self, name: str) -> Optional[dict[str, Any]]:
        self.calls.append("container")
        return copy.deepcopy(self.recorded) if self.recorded and self.recorded["Name"] == "/" + name else None

    def read_archive(self, container_id: str, path: str) -> Optional[bytes]:
        self.calls.append("read_archive")
        return self.files.get(path)

    def image(self, ref: str) -> Optional[dict[str, Any]]:
        return {"Config": {"Healthcheck": None}}


def spec(**changes: Any) -> ServiceSpec:
    given = dict(ARGS, **changes)
    result = ArgumentSpecValidator(service_options()).validate({k: v for k, v in given.items() if v is not None})
    assert not result.error_messages, result.error_messages
    return ServiceSpec.from_params(result.validated_parameters)


def no_resolve(ref: Any) -> str:
    raise AssertionError("a pinned image is never resolved")


def plan(container: Optional[dict[str, Any]] = RECORDED, files: Optional[dict[str, bytes]] = None, **changes: Any) -> Any:
    return plan_service(RecordedEngine(container, files), spec(**changes), no_resolve)  # type: ignore[arg-type]


def edited(**host: Any) -> dict[str, Any]:
    container = copy.deepcopy(RECORDED)
    container["HostConfig"].update(host)
    return container


def test_the_same_spec_plans_nothing_and_reads_no_file() -> None:
    engine = RecordedEngine(RECORDED)
    planned = plan_service(engine, spec(), no_resolve)  # type: ignore[arg-type]
    assert (planned.action, planned.changes, planned.start, planned.stop) == ("none", [], False, False)
    assert engine.calls == ["container"]


def test_restart_policy_memory_and_cpus_are_one_in_place_update() -> None:
    planned = plan(restart_retries=4, memory="128m", cpus=0.5)
    assert planned.action == "update"
    bodies = {c.field: c.update for c in planned.changes}
    assert bodies["restart_policy"] == {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 4}}
    assert bodies["memory"]["Memory"] == 128 << 20
    assert bodies["cpus"] == {"NanoCpus": 500000000}


def test_removing_the_memory_limit_recreates_and_says_why() -> None:
    planned = plan(memory=None)
    assert planned.action == "recreate"
    assert [(c.field, c.why_recreate) for c in planned.changes] == [
        ("memory", "the Engine cannot remove a memory limit from a running container")]
    assert planned.previous_spec == SPEC and planned.previous_image == LABELS.get("dockhand.previous-image")


def test_a_new_image_recreates_and_records_the_running_one_as_previous() -> None:
    other = SPEC["image"].split("@")[0] + "@sha256:" + "e" * 64
    planned = plan(image=other)
    assert planned.action == "recreate" and [c.field for c in planned.changes] == ["image"]
    assert planned.previous_image == RECORDED["Config"]["Image"] and planned.previous_spec == SPEC


def test_a_manual_docker_update_is_a_change_back_to_the_spec() -> None:
    planned = plan(edited(RestartPolicy={"Name": "always", "MaximumRetryCount": 0}))
    assert planned.action == "update"
    assert [(c.field, c.before) for c in planned.changes] == [("restart_policy", {"name": "always", "retries": 0})]


def test_the_collections_own_in_place_update_is_read_back_from_the_container() -> None:
    container = edited(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 4})
    record = read_record(container)
    assert record is not None
    files = {UPDATES_PATH: updates_archive(record, {"restart_policy": {"name": "on-failure", "retries": 4}})}
    planned = plan(container, files, restart_retries=4)
    assert (planned.action, planned.changes) == ("none", [])
    assert plan(container, files, restart_retries=3).action == "update"


def test_an_updates_file_of_another_spec_does_not_count() -> None:
    container = edited(RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 4})
    record = read_record(container)
    assert record is not None
    stale = type(record)(**dict(record.__dict__, spec_hash=spec_hash({"other": True})))
    files = {UPDATES_PATH: updates_archive(stale, {"restart_policy": {"name": "on-failure", "retries": 4}})}
    assert plan(container, files, restart_retries=4).action == "none"  # live 4 == desired 4
    assert plan(container, files, restart_retries=3).changes[0].before == {"name": "on-failure", "retries": 4}


def test_state_changes_without_a_new_container() -> None:
    assert (plan(state="stopped").action, plan(state="stopped").stop) == ("none", True)
    assert plan(state="absent").action == "remove"
    stopped = copy.deepcopy(RECORDED)
    stopped["State"]["Running"] = False
    assert plan(stopped).start is True


def test_a_container_without_a_record_is_only_replaced_with_adopt() -> None:
    stranger = copy.deepcopy(RECORDED)
    del stranger["Config"]["Labels"][LABEL_SPEC]
    with pytest.raises(ConvergeError, match="not managed by dockhand.containers"):
        plan(stranger)
    assert plan(stranger, adopt=True).action == "recreate"


def test_rollback_plans_the_recorded_previous_deployment() -> None:
    current = copy.deepcopy(RECORDED)
    previous = dict(SPEC, image=SPEC["image"].split("@")[0] + "@sha256:" + "f" * 64, env={"MODE": "old"})
    current["Config"]["Labels"][LABEL_PREVIOUS_SPEC] = json.dumps(previous)
    planned = plan(current, rollback=True, image=None)
    assert planned.action == "recreate" and planned.desired == previous
    assert planned.env_values == {"MODE": "old", "TOKEN": "s3cret"}  # the secret's value from the running container
    assert planned.previous_spec == SPEC and planned.previous_image == RECORDED["Config"]["Image"]
    with pytest.raises(ConvergeError, match="no previous deployment"):
        plan(rollback=True, image=None)


def test_a_first_deployment_creates() -> None:
    planned = plan(None)
    assert planned.action == "create" and planned.start
    assert {c.field for c in planned.changes} >= {"image", "ports", "volumes", "memory"}


def test_the_always_warning_only_when_the_container_changes() -> None:
    engine = RecordedEngine(edited(RestartPolicy={"Name": "always", "MaximumRetryCount": 0}))
    always = spec(restart_policy="always", restart_retries=None, healthcheck={"disable": True})
    unchanged = plan_service(engine, always, no_resolve)  # type: ignore[arg-type]
    assert unchanged.changes  # the recorded spec said on-failure: this run updates it
    assert _policy_warnings(engine, unchanged)  # type: ignore[arg-type]
    unchanged.changes = []
    assert _policy_warnings(engine, unchanged) == []  # type: ignore[arg-type]


def test_the_recording_is_consistent() -> None:
    assert LABELS[LABEL_SPEC_HASH] == spec_hash(SPEC)
