# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time per service, enforced by the Engine itself.

The lock is a container named ``<service>-dockhand-lock`` that is created and never started: the Engine
reserves container names atomically (a second create gets HTTP 409), on whichever host it runs, so the lock
works the same for modules on the Docker host and for modules reaching a remote ``docker_host``. Its labels
name the holder: host, boot id, pid and that process's start time, a run id, and a lease in seconds.

A holder is dead when it ran on this same machine (same host name and boot id) and its process is gone
(or the pid now belongs to a younger process), or, for a holder on another machine, when its lease has
run out by the Engine's clock. A dead holder's lock is removed (by its id, so a successor's lock is never
touched) and taken.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ._engine import Engine, EngineConflict, EngineError

LOCK_SUFFIX = "-dockhand-lock"
LABEL_LOCK = "dockhand.lock"
LABEL_HOST = "dockhand.lock.host"
LABEL_BOOT = "dockhand.lock.boot-id"
LABEL_PID = "dockhand.lock.pid"
LABEL_PID_START = "dockhand.lock.pid-start"
LABEL_RUN = "dockhand.lock.run"
LABEL_LEASE = "dockhand.lock.lease"


class LockError(Exception):
    """The lock could not be had within the wait: the message names the holder."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if it is gone
    (or a zombie: killed, and not yet reaped by a parent that was killed with it)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            stat = handle.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields after it follow the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) a lock."""

    host: str
    boot_id: str
    pid: int
    pid_start: str
    run: str
    lease: int

    @classmethod
    def this_process(cls, lease: int) -> "Holder":
        pid = os.getpid()
        return cls(socket.gethostname(), _boot_id(), pid, process_start(pid) or "", uuid.uuid4().hex[:12], lease)

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> "Holder":
        def number(key: str) -> int:
            value = labels.get(key, "")
            return int(value) if value.isdigit() else 0
        return cls(labels.get(LABEL_HOST, "?"), labels.get(LABEL_BOOT, ""), number(LABEL_PID),
                   labels.get(LABEL_PID_START, ""), labels.get(LABEL_RUN, "?"), number(LABEL_LEASE))

    def labels(self, service: str) -> dict[str, str]:
        return {LABEL_LOCK: service, LABEL_HOST: self.host, LABEL_BOOT: self.boot_id, LABEL_PID: str(self.pid),
                LABEL_PID_START: self.pid_start, LABEL_RUN: self.run, LABEL_LEASE: str(self.lease)}

    def describe(self) -> str:
        return "pid %d on host %s (run %s)" % (self.pid, self.host, self.run)


def why_dead(holder: Holder, me: Holder, age: float, start_of: Callable[[int], Optional[str]] = process_start
             ) -> Optional[str]:
    """Why ``holder`` can no longer be running (as seen by ``me``), or None while it may be."""
    if holder.host == me.host and holder.boot_id == me.boot_id and holder.boot_id:
        started = start_of(holder.pid)
        if started is None:
            return "its process %d is gone" % holder.pid
        if started != holder.pid_start:
            return "pid %d now belongs to another process" % holder.pid
        return None
    if age > holder.lease:
        return "its lease of %d s ran out %d s ago" % (holder.lease, age - holder.lease)
    return None


def engine_seconds(stamp: str) -> float:
    """An Engine time stamp (RFC 3339 with up to nanoseconds, any offset) as epoch seconds."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", stamp)
    if not match:
        raise EngineError("the Engine gave an unreadable time stamp %r" % stamp)
    base, fraction, zone = match.groups()
    when = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    seconds = when.timestamp() + float("0." + (fraction or "0"))
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return seconds


class ServiceLock:
    """``with ServiceLock(engine, "web", wait=90, lease=900):`` - held for the block, released after it."""

    def __init__(self, engine: Engine, service: str, *, wait: float, lease: int, poll: float = 0.25,
                 image: Optional[str] = None) -> None:
        self.engine = engine
        self.image = image  # the service's own image, when the Engine has it: the lock then pins no other image
        self.service = service
        self.name = service + LOCK_SUFFIX
        self.wait = wait
        self.poll = poll
        self.me = Holder.this_process(lease)
        self.lock_id: Optional[str] = None

    def __enter__(self) -> "ServiceLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            try:
                self.lock_id = self._create()
                return
            except EngineConflict:
                pass
            current = self.engine.container(self.name)
            if current is None:
                continue  # released between our create and our look
            if self._dead(current):
                self._remove(current["Id"])
                continue
            if time.monotonic() >= deadline:
                holder = Holder.from_labels(current["Config"].get("Labels") or {})
                age = self._age(current)
                raise LockError(
                    "service %s is being changed by another run: %s has held its lock for %d s; waited %d s for it. "
                    "If that run is gone for good (e.g. its machine was switched off), remove the lock with: "
                    "docker rm %s" % (self.service, holder.describe(), age, self.wait, self.name))
            time.sleep(self.poll)

    def clear_if_dead(self) -> None:
        """Remove the lock a killed run left behind, so a run that needs no lock still leaves none around."""
        current = self.engine.container(self.name)
        if current is not None and self._dead(current):
            self._remove(current["Id"])

    def _dead(self, lock: dict[str, Any]) -> Optional[str]:
        holder = Holder.from_labels(lock["Config"].get("Labels") or {})
        return why_dead(holder, self.me, self._age(lock))

    def _age(self, lock: dict[str, Any]) -> float:
        return engine_seconds(self.engine.system_time()) - engine_seconds(lock["Created"])

    def release(self) -> None:
        if self.lock_id is not None:
            self._remove(self.lock_id)
            self.lock_id = None

    def _create(self) -> str:
        images = [self.image] if self.image and self.engine.image(self.image) else self.engine.image_ids()
        if not images:
            raise EngineError("the Engine has no image at all, and the lock container %s needs one (it is never "
                              "started); pull any image first" % self.name)
        config = dict(entrypoint=["/dockhand-lock"], labels=self.me.labels(self.service), network_disabled=True)
        return self.engine.create_container(self.name, images[0], config, self.engine.host_config(), None)

    def _remove(self, container_id: str) -> None:
        try:
            # Never started, so anonymous volumes it has (an image's VOLUME) are empty and nobody else's.
            self.engine.remove(container_id, anonymous_volumes=True)
        except EngineError:
            if self.engine.container(container_id) is not None:
                raise
