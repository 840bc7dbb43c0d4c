# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host deploy audit log: one JSON object per line, appended, never rewritten.

Each line says when, who (controller user, AWX job), which run, the outcome, and per service the
digest before and after, so "who changed what here" is answered on the host itself.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

RESULTS = ("updated", "unchanged", "rolled_back", "failed", "not_reached")


class AuditError(Exception):
    """The log could not be written or read; the message names the file and the reason."""


@dataclass(frozen=True)
class ServiceChange:
    name: str
    old: Optional[str]
    new: Optional[str]

    @classmethod
    def from_param(cls, item: dict[str, Any]) -> "ServiceChange":
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise AuditError("services: every item needs a name (got %r)" % (item,))
        unknown = sorted(set(item) - {"name", "old", "new"})
        if unknown:
            raise AuditError("services: item %s has unknown keys %s; use name, old and new" % (name, ", ".join(unknown)))
        return cls(name=name, old=item.get("old") or None, new=item.get("new") or None)


@dataclass(frozen=True)
class Entry:
    time: str
    user: str
    run_id: str
    result: str
    awx_job_id: Optional[str] = None
    playbook: Optional[str] = None
    note: Optional[str] = None
    services: list[ServiceChange] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(time=self.time, user=self.user, awx_job_id=self.awx_job_id, run_id=self.run_id,
                                    result=self.result,
                                    services=[dict(name=s.name, old=s.old, new=s.new) for s in self.services])
        if self.playbook:
            data["playbook"] = self.playbook
        if self.note:
            data["note"] = self.note
        return data


def changes_from_info(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[ServiceChange]:
    """Per service, the image before and after, from two lists shaped like service_info's ``services``."""
    old = {str(s.get("name")): s.get("image") for s in before}
    new = {str(s.get("name")): s.get("image") for s in after}
    return [ServiceChange(name=name, old=old.get(name) or None, new=new.get(name) or None)
            for name in sorted(set(old) | set(new))]


def services_after(before: list[dict[str, Any]], outcomes: dict[str, dict[str, Any]],
                   removed: list[str]) -> list[dict[str, Any]]:
    """What runs after a converge, shaped like service_info's ``services`` (name, image): what ran ``before``, with
    the stack's per-service ``outcomes`` laid over it and its ``removed`` (pruned) services taken out."""
    after = [dict(name=s.get("name"), image=s.get("image")) for s in before
             if s.get("name") not in outcomes and s.get("name") not in removed]
    after.extend(dict(name=name, image=outcome.get("image")) for name, outcome in outcomes.items()
                 if outcome.get("state") != "absent")
    return after


def append_entry(path: str, entry: Entry) -> None:
    """One line, written with a single append, so concurrent writers never interleave within a line."""
    line = (json.dumps(entry.as_dict(), sort_keys=True) + "\n").encode()
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise AuditError("cannot append to the audit log %s: %s" % (path, exc.strerror or exc))


def last_entries(path: str, count: int) -> tuple[list[dict[str, Any]], int]:
    """The last ``count`` entries (oldest first) and how many unreadable lines were skipped."""
    if count <= 0:
        return [], 0
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = deque(handle, maxlen=count)
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise AuditError("cannot read the audit log %s: %s" % (path, exc.strerror or exc))
    entries, skipped = [], 0
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(entry, dict):
            entries.append(entry)
        else:
            skipped += 1
    return entries, skipped
