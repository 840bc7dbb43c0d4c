from __future__ import annotations

import json
from typing import Any

from ansible_collections.dockhand.containers.plugins.module_utils._container_config import observed_fields
from ansible_collections.dockhand.containers.plugins.module_utils._diff import compare, diff_view
from ansible_collections.dockhand.containers.plugins.module_utils._record import LABEL_SPEC, Record, read_record

RECORDED = {
    "image": "reg/app@sha256:" + "1" * 64,
    "restart_policy": {"name": "on-failure", "retries": 5},
    "memory": None,
    "cpus": None,
    "secret_env": {"TOKEN": "sha256:aaaa"},
    "env": {"A": "1"},
}


def container(restart: dict[str, Any], memory: int = 0, swap: int = 0) -> dict[str, Any]:
    return {
        "Id": "c" * 64,
        "Config": {"Image": RECORDED["image"], "Labels": {LABEL_SPEC: json.dumps(RECORDED)}},
        "HostConfig": {"RestartPolicy": restart, "Memory": memory, "MemorySwap": swap, "NanoCpus": 0},
    }


def record_of(item: dict[str, Any]) -> Record:
    record = read_record(item)
    assert record is not None
    return record


def test_same_spec_means_no_change() -> None:
    running = container({"Name": "on-failure", "MaximumRetryCount": 5})
    assert compare(RECORDED, observed_fields(running, record_of(running)), running) == []


def test_manual_docker_update_of_the_restart_policy_is_seen_as_an_in_place_change() -> None:
    running = container({"Name": "always", "MaximumRetryCount": 0})
    changes = compare(RECORDED, observed_fields(running, record_of(running)), running)
    assert [(c.field, c.in_place) for c in changes] == [("restart_policy", True)]
    assert changes[0].before == {"name": "always", "retries": 0}
    assert changes[0].update == {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 5}}


def test_memory_and_cpus_update_in_place_keeping_swap_at_twice_the_memory() -> None:
    running = container({"Name": "on-failure", "MaximumRetryCount": 5}, memory=64 << 20, swap=128 << 20)
    desired = dict(RECORDED, memory=256 << 20, cpus=0.5)
    changes = compare(desired, observed_fields(running, record_of(running)), running)
    assert {c.field: c.update for c in changes} == {"memory": {"Memory": 256 << 20, "MemorySwap": 512 << 20},
                                                    "cpus": {"NanoCpus": 500000000}}
    assert all(c.in_place for c in changes)


def test_removing_a_limit_needs_a_new_container_and_the_diff_says_why() -> None:
    running = container({"Name": "on-failure", "MaximumRetryCount": 5}, memory=64 << 20)
    changes = compare(RECORDED, observed_fields(running, record_of(running)), running)
    assert [(c.field, c.in_place) for c in changes] == [("memory", False)]
    view = diff_view(changes, "started", "started")
    assert view["after"]["recreate_reason"] == ["memory: the Engine cannot remove a memory limit from a running container"]


def test_image_change_needs_a_new_container() -> None:
    desired = dict(RECORDED, image="reg/app@sha256:" + "2" * 64)
    running = container({"Name": "on-failure", "MaximumRetryCount": 5})
    changes = compare(desired, observed_fields(running, record_of(running)), running)
    assert [(c.field, c.in_place, c.why_recreate) for c in changes] == [("image", False, None)]


def test_diff_masks_secret_values_but_names_the_changed_secret() -> None:
    desired = dict(RECORDED, secret_env={"TOKEN": "sha256:bbbb", "NEW": "sha256:cccc"})
    view = diff_view(compare(desired, RECORDED), "started", "started")
    assert view["before"] == {"secret_env": {"TOKEN": "********"}}
    assert view["after"]["secret_env"] == {"TOKEN": "********", "NEW": "********"}
    assert view["after"]["secret_env_changed"] == ["NEW", "TOKEN"]
    assert "sha256:bbbb" not in json.dumps(view)


def test_state_change_alone_appears_in_the_diff() -> None:
    assert diff_view([], "started", "stopped") == {"before": {"state": "started"}, "after": {"state": "stopped"}}
