from __future__ import annotations

import json
from typing import Any

from ansible_collections.dockhand.containers.plugins.module_utils._diff import (
    compare, diff_view, observed_fields, recorded_fields,
)
from ansible_collections.dockhand.containers.plugins.module_utils._service_spec import LABEL_SPEC

RECORDED = {
    "image": "reg/app@sha256:" + "1" * 64,
    "restart_policy": {"name": "on-failure", "retries": 5},
    "memory": None,
    "cpus": None,
    "secret_env": {"TOKEN": "sha256:aaaa"},
    "env": {"A": "1"},
}


def container(restart: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "Config": {"Image": RECORDED["image"], "Labels": labels if labels is not None else {LABEL_SPEC: json.dumps(RECORDED)}},
        "HostConfig": {"RestartPolicy": restart, "Memory": 0, "NanoCpus": 0},
    }


def test_unmanaged_container_has_no_recorded_spec() -> None:
    assert recorded_fields(container({"Name": "no"}, labels={})) is None
    assert observed_fields(container({"Name": "no"}, labels={LABEL_SPEC: "not json"})) is None


def test_same_spec_means_no_change() -> None:
    observed = observed_fields(container({"Name": "on-failure", "MaximumRetryCount": 5}))
    assert observed is not None and compare(RECORDED, observed) == []


def test_manual_docker_update_of_the_restart_policy_is_seen_as_an_in_place_change() -> None:
    observed = observed_fields(container({"Name": "always", "MaximumRetryCount": 0}))
    assert observed is not None
    changes = compare(RECORDED, observed)
    assert [(c.field, c.in_place) for c in changes] == [("restart_policy", True)]
    assert changes[0].before == {"name": "always", "retries": 0}


def test_image_change_needs_a_new_container() -> None:
    desired = dict(RECORDED, image="reg/app@sha256:" + "2" * 64)
    observed = observed_fields(container({"Name": "on-failure", "MaximumRetryCount": 5}))
    assert observed is not None
    assert [(c.field, c.in_place) for c in compare(desired, observed)] == [("image", False)]


def test_diff_masks_secret_values_but_names_the_changed_secret() -> None:
    desired = dict(RECORDED, secret_env={"TOKEN": "sha256:bbbb", "NEW": "sha256:cccc"})
    view = diff_view(compare(desired, RECORDED), "started", "started")
    assert view["before"] == {"secret_env": {"TOKEN": "********"}}
    assert view["after"]["secret_env"] == {"TOKEN": "********", "NEW": "********"}
    assert view["after"]["secret_env_changed"] == ["NEW", "TOKEN"]
    assert "sha256:bbbb" not in json.dumps(view)


def test_state_change_alone_appears_in_the_diff() -> None:
    assert diff_view([], "started", "stopped") == {"before": {"state": "started"}, "after": {"state": "stopped"}}
