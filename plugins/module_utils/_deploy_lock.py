# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host deploy lock: a small JSON file that says who deploys here, for which run, since when.

Taking it is atomic (a complete temporary file hard-linked to the lock's name, which fails when
the name exists), so two deploys racing for one host cannot both win. A lock left by a run that
died stays until someone breaks it on purpose (``force``): its age is shown, never judged.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Optional


class LockError(Exception):
    """The lock could not be taken or released; the message names the holder and what to do."""

    def __init__(self, message: str, holder: Optional["Holder"] = None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    holder: str   # who, e.g. "alice@ctl1 (AWX job 42)"
    run_id: str   # which run; the same run may take its own lock again
    since: str    # when, ISO 8601 UTC

    def as_dict(self) -> dict[str, str]:
        return dict(holder=self.holder, run_id=self.run_id, since=self.since)

    @classmethod
    def from_text(cls, text: str) -> "Holder":
        try:
            data = json.loads(text)
            return cls(holder=str(data["holder"]), run_id=str(data["run_id"]), since=str(data["since"]))
        except (ValueError, KeyError, TypeError):
            return cls(holder="unknown (unreadable lock file: %r)" % text[:80], run_id="", since="unknown")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(holder: Holder, now: datetime.datetime) -> str:
    """'alice@ctl1 (run r1) since 2026-11-29T23:10:00Z (12 min ago)'."""
    text = "%s (run %s) since %s" % (holder.holder, holder.run_id or "?", holder.since)
    try:
        since = datetime.datetime.strptime(holder.since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return text
    minutes = int((now - since).total_seconds() // 60)
    age = "%d min" % minutes if minutes < 120 else "%.1f h" % (minutes / 60)
    return "%s (%s ago)" % (text, age)


def read_lock(path: str) -> Optional[Holder]:
    try:
        with open(path, encoding="utf-8") as handle:
            return Holder.from_text(handle.read())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError("cannot read the deploy lock %s: %s" % (path, exc.strerror or exc))


@dataclass
class LockOutcome:
    changed: bool
    lock: Optional[Holder]          # the lock after the task (None: no lock)
    previous: Optional[Holder]      # the lock before the task
    broken: bool = False            # another run's lock was broken (force)

    def as_dict(self, diff: bool) -> dict[str, Any]:
        result: dict[str, Any] = dict(changed=self.changed, broken=self.broken,
                                      lock=self.lock.as_dict() if self.lock else None,
                                      previous=self.previous.as_dict() if self.previous else None)
        if diff:
            result["diff"] = dict(before=self.previous.as_dict() if self.previous else {},
                                  after=self.lock.as_dict() if self.lock else {})
        return result


def _write_new(path: str, holder: Holder, replace: bool) -> None:
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".deploy-lock-", dir=directory)
    except OSError as exc:
        raise LockError("cannot create the deploy lock in %s: %s" % (directory, exc.strerror or exc))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(holder.as_dict(), handle, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # atomic, and fails when another run created the lock first
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def acquire(path: str, me: Holder, *, force: bool, check_mode: bool,
            now: Callable[[], datetime.datetime] = utc_now) -> LockOutcome:
    current = read_lock(path)
    if current is not None and current.run_id == me.run_id:
        return LockOutcome(changed=False, lock=current, previous=current)
    if current is not None and not force:
        raise LockError("another deploy holds this host: %s. Wait for it to finish; if that run is gone, break the "
                        "lock with force=true (the rolling playbooks: -e rolling_update_break_lock=true); lock file %s"
                        % (describe(current, now()), path), current)
    if check_mode:
        return LockOutcome(changed=True, lock=me, previous=current, broken=current is not None)
    try:
        _write_new(path, me, replace=current is not None)
    except FileExistsError:
        winner = read_lock(path)
        raise LockError("another deploy took this host a moment ago: %s; lock file %s"
                        % (describe(winner, now()) if winner else "unknown", path), winner)
    except OSError as exc:
        raise LockError("cannot write the deploy lock %s: %s" % (path, exc.strerror or exc))
    return LockOutcome(changed=True, lock=me, previous=current, broken=current is not None)


def release(path: str, run_id: str, *, force: bool, check_mode: bool,
            now: Callable[[], datetime.datetime] = utc_now) -> LockOutcome:
    current = read_lock(path)
    if current is None:
        return LockOutcome(changed=False, lock=None, previous=None)
    if current.run_id != run_id and not force:
        raise LockError("the deploy lock %s belongs to another run: %s; it was left in place (force=true removes it)"
                        % (path, describe(current, now())), current)
    if not check_mode:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise LockError("cannot remove the deploy lock %s: %s" % (path, exc.strerror or exc))
    return LockOutcome(changed=True, lock=None, previous=current, broken=current.run_id != run_id)
