from __future__ import annotations

from ansible_collections.dockhand.containers.plugins.module_utils._container_config import (
    SETTINGS, desired_fields, engine_args, in_place_update,
)
from ansible_collections.dockhand.containers.plugins.module_utils._service_spec import ServiceSpec

SPEC = ServiceSpec(name="web", image=None, memory=64 << 20, cpus=1.5, restart_policy="no")


def test_one_row_per_field_and_every_updatable_setting_is_observed_live() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)) and list(desired_fields(SPEC)) == names
    assert {s.name for s in SETTINGS if s.update} == {"restart_policy", "memory", "memory_reservation", "cpus"}
    assert all(s.observe for s in SETTINGS if s.update)


def test_create_time_settings_have_no_in_place_update() -> None:
    assert in_place_update("image", "x", {}) is None and in_place_update("ports", [], {}) is None


def test_swap_follows_memory_only_where_the_engine_limits_swap() -> None:
    assert in_place_update("memory", 128 << 20, {"HostConfig": {"MemorySwap": 0}}) == {"Memory": 128 << 20}
    assert in_place_update("memory", 128 << 20, {"HostConfig": {"MemorySwap": 64 << 20}}) == {
        "Memory": 128 << 20, "MemorySwap": 256 << 20}


def test_a_cpu_quota_set_by_hand_cannot_become_a_cpus_limit_in_place() -> None:
    assert "CPU quota" in str(in_place_update("cpus", 1.0, {"HostConfig": {"CpuQuota": 50000}}))


def test_engine_args_carry_limits_policy_and_all_labels() -> None:
    args = engine_args(desired_fields(SPEC), {}, {"team": "shop", "dockhand.managed": "true"})
    assert args["host"]["mem_limit"] == 64 << 20 and args["host"]["nano_cpus"] == 1500000000
    assert args["host"]["restart_policy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert args["config"]["labels"] == {"team": "shop", "dockhand.managed": "true"}
    assert args["config"]["environment"] is None and args["host"]["port_bindings"] is None
