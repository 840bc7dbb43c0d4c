"""The swap's states and the way forward from each (pure: containers are inspect-shaped dicts)."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._swap import (
    Found, State, Step, SwapRecord, classify, next_steps, proven, readiness,
)

S = "web"
CHECK = {"Test": ["CMD", "true"]}


def box(cid: str, name: str, *, running: bool = True, health: Optional[str] = None, record: Optional[SwapRecord] = None,
        check: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    labels = record.label() if record else {}
    state: dict[str, Any] = {"Running": running, "Restarting": False}
    if health:
        state["Health"] = {"Status": health}
    return {"Id": cid * 8, "Name": "/" + name, "State": state,
            "Config": {"Labels": labels, "Healthcheck": check or (CHECK if health else None)}}


OLD = "o1d0o1d0"
NEW = "5ee05ee0"


def new_record(old_running: bool = True, start: bool = True, wait: str = "auto", replaces: Optional[str] = OLD * 8
               ) -> SwapRecord:
    return SwapRecord(replaces, old_running, start, wait)


def ids(steps: list[Step]) -> list[str]:
    names = {OLD * 8: "old", NEW * 8: "new"}
    return [" ".join(filter(None, [s.verb, names[s.container], s.to])) for s in steps]


def test_record_round_trips_through_its_label() -> None:
    record = new_record(old_running=False, start=True, wait="healthy")
    assert SwapRecord.of({"Config": {"Labels": record.label()}}) == record
    assert SwapRecord.of({"Config": {"Labels": {"dockhand.swap": "not json"}}}) is None
    assert SwapRecord.of(None) is None


@pytest.mark.parametrize("current, nxt, parked, state", [
    (None, None, None, State.STEADY),
    ("old", None, None, State.STEADY),
    ("old", "new", None, State.PREPARED),
    (None, "new", "old", State.PARKED),
    ("new", None, "old", State.SWAPPED),
    (None, "new", None, State.NEW_ONLY),
    (None, None, "old", State.OLD_ONLY),
    ("other", None, "old", State.LEFTOVER),
])
def test_classify_names_every_state(current: Optional[str], nxt: Optional[str], parked: Optional[str],
                                    state: State) -> None:
    made = {"old": box(OLD, S), "new": box(NEW, S, record=new_record()), "other": box("0the0the", S)}
    found = Found(made.get(current or ""), made.get(nxt or ""), made.get(parked or ""))
    assert classify(found) == state


def test_readiness_auto_follows_the_containers_health_check() -> None:
    assert readiness(box(NEW, S, health="starting"), "auto") == "healthy"
    assert readiness(box(NEW, S), "auto") == "running"
    assert readiness(box(NEW, S, check={"Test": ["NONE"]}), "auto") == "running"
    assert readiness(box(NEW, S, health="starting"), "running") == "running"


@pytest.mark.parametrize("container, ok", [
    (box(NEW, S, health="healthy", record=new_record()), True),
    (box(NEW, S, health="starting", record=new_record()), False),
    (box(NEW, S, health="unhealthy", record=new_record()), False),
    (box(NEW, S, running=False, record=new_record()), False),
    (box(NEW, S, health="starting", record=new_record(wait="running")), True),
    (box(NEW, S, running=False, record=new_record(start=False)), True),
    (box(NEW, S, health="starting", record=new_record(wait="none")), True),
])
def test_proven_means_what_the_record_asked_of_the_new_container(container: dict[str, Any], ok: bool) -> None:
    assert proven(container) is ok


def test_killed_in_the_health_wait_of_a_broken_image_puts_the_parked_old_one_back_and_starts_it() -> None:
    # Issue 9 case 1: the parked container is the truth until the new one has proven healthy.
    found = Found(box(NEW, S, health="starting", record=new_record()), None, box(OLD, S + "-dockhand-prev", running=False))
    assert ids(next_steps(S, found)) == ["stop new", "rename new web-dockhand-next", "rename old web", "start old",
                                         "remove new"]


def test_a_proven_new_container_is_kept_and_the_parked_one_removed() -> None:
    found = Found(box(NEW, S, health="healthy", record=new_record()), None, box(OLD, S + "-dockhand-prev", running=False))
    assert ids(next_steps(S, found)) == ["remove old"]
    assert ids(next_steps(S, found, undo=True))[-2:] == ["start old", "remove new"]


def test_killed_while_undoing_starts_the_old_one_it_ran_before() -> None:
    # Issue 9 case 2: the undo was cut after the old container got its name back, still stopped.
    found = Found(box(OLD, S, running=False), box(NEW, S + "-dockhand-next", running=False, record=new_record()), None)
    assert ids(next_steps(S, found)) == ["start old", "remove new"]


def test_an_old_container_that_was_stopped_before_stays_stopped() -> None:
    found = Found(box(OLD, S, running=False),
                  box(NEW, S + "-dockhand-next", running=False, record=new_record(old_running=False)), None)
    assert ids(next_steps(S, found)) == ["remove new"]


def test_prepared_new_container_is_stopped_before_the_old_one_is_started() -> None:
    # Its ports must be free before the old one binds them again.
    found = Found(box(OLD, S, running=False), box(NEW, S + "-dockhand-next", health="healthy", record=new_record()),
                  None)
    assert ids(next_steps(S, found)) == ["stop new", "start old", "remove new"]


def test_parked_between_the_renames_finishes_when_proven_and_undoes_when_not() -> None:
    parked = box(OLD, S + "-dockhand-prev")
    healthy = box(NEW, S + "-dockhand-next", health="healthy", record=new_record())
    assert ids(next_steps(S, Found(None, healthy, parked))) == ["rename new web", "stop old", "remove old"]
    created = box(NEW, S + "-dockhand-next", running=False, record=new_record())
    assert ids(next_steps(S, Found(None, created, parked))) == ["rename old web", "remove new"]


def test_a_first_deployment_cut_short_is_removed_unless_proven() -> None:
    first = new_record(replaces=None)
    assert ids(next_steps(S, Found(None, box(NEW, S + "-dockhand-next", running=False, record=first), None))) == \
        ["remove new"]
    assert ids(next_steps(S, Found(None, box(NEW, S + "-dockhand-next", health="starting", record=first), None))) == \
        ["stop new", "remove new"]
    assert ids(next_steps(S, Found(None, box(NEW, S + "-dockhand-next", health="healthy", record=first), None))) == \
        ["rename new web"]


def test_a_parked_container_without_a_record_gets_its_name_back_and_a_stray_one_is_removed() -> None:
    assert ids(next_steps(S, Found(None, None, box(OLD, S + "-dockhand-prev")))) == ["rename old web"]
    stray = Found(box(NEW, S, health="healthy"), None, box(OLD, S + "-dockhand-prev", running=False))
    assert ids(next_steps(S, stray)) == ["remove old"]


def test_steady_needs_nothing() -> None:
    assert next_steps(S, Found(box(OLD, S), None, None)) == []
    assert next_steps(S, Found(None, None, None)) == []
