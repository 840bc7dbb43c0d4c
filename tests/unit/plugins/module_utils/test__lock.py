"""The lock's holder record and dead-holder rules (pure; the Engine-side behaviour is in test_swap_concurrent)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._engine import EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._lock import (
    Holder, engine_seconds, process_start, why_dead,
)

ME = Holder("ctl", "boot-1", 100, "555", "run-me", 900)


def test_holder_round_trips_through_its_labels() -> None:
    holder = Holder("ctl", "boot-1", 4242, "777", "abc", 900)
    assert Holder.from_labels(holder.labels("web")) == holder


def test_holder_of_this_process_is_alive_and_knows_its_start() -> None:
    here = Holder.this_process(60)
    assert here.pid == os.getpid() and here.pid_start == process_start(os.getpid())
    assert why_dead(here, here, age=10_000) is None  # same machine: the lease does not matter, the process does


def test_a_gone_process_on_this_machine_is_dead() -> None:
    holder = Holder("ctl", "boot-1", 4242, "777", "abc", 900)
    assert why_dead(holder, ME, age=1, start_of=lambda pid: None) == "its process 4242 is gone"
    assert why_dead(holder, ME, age=1, start_of=lambda pid: "778") == "pid 4242 now belongs to another process"
    assert why_dead(holder, ME, age=1, start_of=lambda pid: "777") is None


def test_a_holder_on_another_machine_or_boot_is_dead_only_after_its_lease() -> None:
    elsewhere = Holder("other", "boot-9", 4242, "777", "abc", 900)
    assert why_dead(elsewhere, ME, age=899, start_of=lambda pid: None) is None
    assert why_dead(elsewhere, ME, age=950, start_of=lambda pid: None) == "its lease of 900 s ran out 50 s ago"
    rebooted = Holder("ctl", "boot-0", 4242, "777", "abc", 900)
    assert why_dead(rebooted, ME, age=10, start_of=lambda pid: "777") is None


@pytest.mark.parametrize("stamp, seconds", [
    ("1970-01-01T00:00:10Z", 10.0),
    ("1970-01-01T00:00:10.123456789Z", 10.123456789),
    ("1970-01-01T01:00:10+01:00", 10.0),
    ("1970-01-01T00:00:10.5-00:30", 1810.5),
])
def test_engine_time_stamps_are_read_with_nanoseconds_and_offsets(stamp: str, seconds: float) -> None:
    assert engine_seconds(stamp) == pytest.approx(seconds)


def test_an_unreadable_engine_time_stamp_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="unreadable time stamp"):
        engine_seconds("yesterday")
