# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The replacement of a service's container as explicit states (docs/swap.md is the written model).

A swap works with three names: the service's own name ``S``, ``S-dockhand-next`` (the new container before it
takes the name) and ``S-dockhand-prev`` (the old container, parked). Every Engine call moves the service from
one state of :class:`State` to the next, and every state has exactly one way forward (:func:`settle`), so a
run killed at any call is finished - or undone - by the next run, under the service's lock.

The new container carries the swap's record (:class:`SwapRecord`, label ``dockhand.swap``): which container it
replaces, whether that one was running, and whether and how the new one must be ready. The parked old container
is the truth until the new one has proven ready (:func:`proven`); only then is the old one removed. Undoing a
failed swap is the same recovery with the new one treated as unproven, so a failed run ends exactly as a
crashed one is recovered: the old container under its name, running if it ran before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Optional

from ._engine import Engine

NEXT_SUFFIX = "-dockhand-next"
PREVIOUS_SUFFIX = "-dockhand-prev"
LABEL_SWAP = "dockhand.swap"

Container = dict[str, Any]


class State(Enum):
    """What exists under the three names (S = the service's name); see docs/swap.md."""

    STEADY = "steady"  # S alone, or nothing: no swap under way
    PREPARED = "prepared"  # S (old, untouched) + next: the new container exists, the old one still holds the name
    PARKED = "parked"  # prev (old) + next (new), S free: between the two renames
    SWAPPED = "swapped"  # S (new) + prev (old): the new one holds the name; the old one waits for its proof
    NEW_ONLY = "new-only"  # next alone: a first deployment, or a swap whose old container is already gone
    OLD_ONLY = "old-only"  # prev alone: a parked container without its record (left by an older release)
    LEFTOVER = "leftover"  # S + prev that S's record does not name: prev is only in the way


@dataclass(frozen=True)
class SwapRecord:
    """What the new container must know to finish or undo its swap, written on it when it is created."""

    replaces: Optional[str]  # id of the old container; None for a first deployment
    old_running: bool  # the old container ran when the swap began: it must run again if the swap is undone
    start: bool  # the new container is meant to run
    wait: str  # auto | none | running | healthy: what proves it

    def label(self) -> dict[str, str]:
        return {LABEL_SWAP: json.dumps(dict(replaces=self.replaces, old_running=self.old_running, start=self.start,
                                            wait=self.wait), sort_keys=True)}

    @classmethod
    def of(cls, container: Optional[Container]) -> Optional["SwapRecord"]:
        text = (((container or {}).get("Config") or {}).get("Labels") or {}).get(LABEL_SWAP)
        if not text:
            return None
        try:
            data = json.loads(text)
            return cls(data.get("replaces"), bool(data["old_running"]), bool(data["start"]), str(data["wait"]))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Found:
    """The containers under the three names, as inspected."""

    current: Optional[Container]
    next: Optional[Container]
    parked: Optional[Container]

    @classmethod
    def look(cls, engine: Engine, name: str) -> "Found":
        return cls(engine.container(name), engine.container(name + NEXT_SUFFIX),
                   engine.container(name + PREVIOUS_SUFFIX))


def classify(found: Found) -> State:
    if found.next is not None:
        if found.current is not None:
            return State.PREPARED
        return State.PARKED if found.parked is not None else State.NEW_ONLY
    if found.parked is None:
        return State.STEADY
    if found.current is None:
        return State.OLD_ONLY
    record = SwapRecord.of(found.current)
    return State.SWAPPED if record is not None and record.replaces == found.parked["Id"] else State.LEFTOVER


def readiness(container: Container, wait: str) -> str:
    """What ``wait`` asks of this container: none, running or healthy (auto: healthy when it has a check)."""
    if wait != "auto":
        return wait
    test = ((container.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return "healthy" if test and test[0] != "NONE" else "running"


def proven(container: Container) -> bool:
    """Has the new container shown, on the Engine now, what its swap record asks of it?"""
    record = SwapRecord.of(container) or SwapRecord(None, False, True, "auto")
    if not record.start:
        return True
    state = container.get("State") or {}
    if not state.get("Running") or state.get("Restarting"):
        return False
    if readiness(container, record.wait) == "healthy":
        return (state.get("Health") or {}).get("Status") == "healthy"
    return True


@dataclass(frozen=True)
class Step:
    """One Engine call: stop, start, remove, or rename (to ``to``)."""

    verb: str
    container: str  # id
    to: str = ""

    def __str__(self) -> str:
        return "%s %s%s" % (self.verb, self.container[:12], " to " + self.to if self.to else "")


def _restore_old(name: str, new: Container, old: Container, old_is_current: bool, record: Optional[SwapRecord]
                 ) -> list[Step]:
    """Undo: the new container out of the way (stopped first, so its ports are free), the old one back under
    the name and running if it ran before, and only then the new one (and with it the record) removed."""
    steps = []
    if (new.get("State") or {}).get("Running"):
        steps.append(Step("stop", new["Id"]))
    if not old_is_current:
        if new["Name"].lstrip("/") == name:
            steps.append(Step("rename", new["Id"], name + NEXT_SUFFIX))
        steps.append(Step("rename", old["Id"], name))
    old_running = record.old_running if record is not None else True
    if old_running and not (old.get("State") or {}).get("Running"):
        steps.append(Step("start", old["Id"]))
    steps.append(Step("remove", new["Id"]))
    return steps


def next_steps(name: str, found: Found, undo: bool = False) -> list[Step]:
    """The way forward from ``found``: finish the swap if the new container has proven itself (and ``undo`` is
    not asked), else put the old one back. Applying the steps leaves the service in state STEADY."""
    state = classify(found)
    # classify() has checked which of them exist in each state
    current, new, parked = found.current or {}, found.next or {}, found.parked or {}
    if state == State.STEADY:
        return []
    if state == State.OLD_ONLY:
        return [Step("rename", parked["Id"], name)]
    if state == State.LEFTOVER:
        return [Step("remove", parked["Id"])]
    if state == State.NEW_ONLY:
        if not undo and proven(new):
            return [Step("rename", new["Id"], name)]
        return [Step("stop", new["Id"]), Step("remove", new["Id"])] if (new.get("State") or {}).get("Running") \
            else [Step("remove", new["Id"])]
    if state == State.PREPARED:
        return _restore_old(name, new, current, True, SwapRecord.of(new))
    if state == State.PARKED:
        if not undo and proven(new):
            return [Step("rename", new["Id"], name), Step("stop", parked["Id"]), Step("remove", parked["Id"])]
        return _restore_old(name, new, parked, False, SwapRecord.of(new))
    # SWAPPED
    if not undo and proven(current):
        return [Step("stop", parked["Id"]), Step("remove", parked["Id"])] if (parked.get("State") or {}).get(
            "Running") else [Step("remove", parked["Id"])]
    return _restore_old(name, current, parked, False, SwapRecord.of(current))


def apply_steps(engine: Engine, steps: list[Step], stop_timeout: int) -> None:
    calls: dict[str, Callable[[Step], None]] = {
        "stop": lambda s: engine.stop(s.container, stop_timeout),
        "start": lambda s: engine.start(s.container),
        "remove": lambda s: engine.remove(s.container),
        "rename": lambda s: engine.rename(s.container, s.to),
    }
    for step in steps:
        calls[step.verb](step)


@dataclass(frozen=True)
class Settled:
    """What :func:`settle` found and did."""

    state: State  # the state found
    steps: list[Step]
    kept_new: bool  # the new container of an interrupted swap now holds the name (the swap was finished)


def settle(engine: Engine, name: str, stop_timeout: int, undo: bool = False) -> Settled:
    """Bring the service back to STEADY from whatever state a run (this one, or one that was killed) left."""
    first = found = Found.look(engine, name)
    taken: list[Step] = []
    for _round in range(3):  # one round suffices for every state a swap makes; more only if hands meddled
        if classify(found) == State.STEADY:
            break
        steps = next_steps(name, found, undo)
        apply_steps(engine, steps, stop_timeout)
        taken += steps
        found = Found.look(engine, name)
    state = classify(first)
    new = first.current if state == State.SWAPPED else first.next
    kept = new is not None and not any(s.verb == "remove" and s.container == new["Id"] for s in taken)
    return Settled(state, taken, kept)


def swap(engine: Engine, name: str, create: Callable[[str, dict[str, str]], str], old: Optional[Container], *,
         start: bool, wait: str, start_first: bool, stop_timeout: int, wait_ready: Callable[[str], None]) -> str:
    """Replace ``old`` (or create the first container) through the states; on any failure the caller undoes
    with ``settle(..., undo=True)``. Returns the new container's id."""
    old_running = bool(old and (old.get("State") or {}).get("Running"))
    record = SwapRecord(old["Id"] if old else None, old_running, start, wait)
    new_id = create(name + NEXT_SUFFIX, record.label())  # PREPARED (or NEW_ONLY)
    if old is None:
        if start and wait != "none":
            engine.start(new_id)
            wait_ready(new_id)
            engine.rename(new_id, name)  # STEADY
        else:
            # Nothing to prove: it takes the name first (the Engine cannot rename a container that is restarting,
            # e.g. one in a crash loop under wait=none); a crash before the start leaves it for the plan to start.
            engine.rename(new_id, name)
            if start:
                engine.start(new_id)
        return new_id
    if start_first and start:
        engine.start(new_id)
        wait_ready(new_id)  # proven while the old one still serves
        engine.rename(old["Id"], name + PREVIOUS_SUFFIX)  # PARKED
        engine.rename(new_id, name)  # SWAPPED, proven
        engine.stop(old["Id"], stop_timeout)
        engine.remove(old["Id"])  # STEADY
        return new_id
    engine.rename(old["Id"], name + PREVIOUS_SUFFIX)  # PARKED: renamed while running, so a crash here keeps it up
    engine.stop(old["Id"], stop_timeout)
    engine.rename(new_id, name)  # SWAPPED
    if start:
        engine.start(new_id)
        wait_ready(new_id)
    engine.remove(old["Id"])  # STEADY
    return new_id
