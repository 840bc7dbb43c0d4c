# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The per-host deploy lock: a small JSON file that says who deploys here, for which run, since when.

Taking it is atomic (a complete temporary file hard-linked to the lock's name, which fails when
the name exists), so two deploys racing for one host cannot both win. A lock's age is shown, never
judged: a lock left by a run that ended without releasing it (it lost the host mid-roll, or it was
killed) is taken over only on evidence that the run has ended, or broken on purpose (``force``).

The evidence lives on the controller: each run records itself in a journal directory there (its
ansible-playbook process, identified by pid and start time, and the controller's boot id), and
:func:`ended_runs` lists the recorded runs whose process is gone. A lock held by one of those is
taken over (``take_over``); a lock from a run the journal does not know (another controller, an AWX
job's container that is gone) still needs ``force``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import socket
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence


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
    taken_over: bool = False        # the lock of a run known to have ended was taken over (take_over)

    def as_dict(self, diff: bool) -> dict[str, Any]:
        result: dict[str, Any] = dict(changed=self.changed, broken=self.broken, taken_over=self.taken_over,
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


def acquire(path: str, me: Holder, *, force: bool, check_mode: bool, take_over: Sequence[str] = (),
            now: Callable[[], datetime.datetime] = utc_now) -> LockOutcome:
    """Take the lock; ``take_over``: run ids known to have ended, whose leftover lock is taken over."""
    current = read_lock(path)
    if current is not None and current.run_id == me.run_id:
        return LockOutcome(changed=False, lock=current, previous=current)
    taking_over = current is not None and bool(current.run_id) and current.run_id in take_over
    if current is not None and not force and not taking_over:
        raise LockError("another deploy holds this host: %s. Wait for it to finish. If that run has ended (its "
                        "controller has no record of it running: another controller, or an AWX job that is over), "
                        "break the lock with force=true (the rolling playbooks: -e rolling_update_break_lock=true); "
                        "lock file %s" % (describe(current, now()), path), current)
    broken = current is not None and not taking_over
    if check_mode:
        return LockOutcome(changed=True, lock=me, previous=current, broken=broken, taken_over=taking_over)
    try:
        _write_new(path, me, replace=current is not None)
    except FileExistsError:
        winner = read_lock(path)
        raise LockError("another deploy took this host a moment ago: %s; lock file %s"
                        % (describe(winner, now()) if winner else "unknown", path), winner)
    except OSError as exc:
        raise LockError("cannot write the deploy lock %s: %s" % (path, exc.strerror or exc))
    return LockOutcome(changed=True, lock=me, previous=current, broken=broken, taken_over=taking_over)


def run_id_problem(run_id: str) -> Optional[str]:
    """Why ``run_id`` cannot identify a run's lock, or None."""
    if not run_id.strip():
        return "run_id is empty; give each run an identifier of its own (the rolling playbooks make one)"
    return None


def outcome_warnings(outcome: LockOutcome) -> list[str]:
    """What a task that took the lock tells its user: another run's lock it broke, or an ended run's it took over."""
    warnings = []
    if outcome.broken and outcome.previous:
        warnings.append("broke the deploy lock of another run: %s" % describe(outcome.previous, utc_now()))
    if outcome.taken_over and outcome.previous:
        warnings.append("took over the deploy lock left by run %s (%s, since %s), which has ended"
                        % (outcome.previous.run_id, outcome.previous.holder, outcome.previous.since))
    return warnings


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


# ------------------------------------------------------------------ the controller's run journal

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PLAYBOOK_COMMANDS = ("ansible-playbook",)


@dataclass(frozen=True)
class RunRecord:
    """One run as its controller recorded it, and what it said when it finished (``lost``)."""

    run_id: str
    holder: str
    since: str
    controller: str                 # the controller's hostname
    boot_id: str                    # the controller's boot, so a pid is never judged across a reboot
    pid: int                        # the run's ansible-playbook process (0: not found)
    pid_start: str                  # its start time (clock ticks since boot), so a reused pid is not this run
    lost: dict[str, str] = field(default_factory=dict)   # host -> why the run left it unfinished

    def as_dict(self) -> dict[str, Any]:
        return dict(run_id=self.run_id, holder=self.holder, since=self.since, controller=self.controller,
                    boot_id=self.boot_id, pid=self.pid, pid_start=self.pid_start, lost=dict(self.lost))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        return cls(run_id=str(data["run_id"]), holder=str(data["holder"]), since=str(data["since"]),
                   controller=str(data["controller"]), boot_id=str(data["boot_id"]), pid=int(data["pid"]),
                   pid_start=str(data["pid_start"]), lost={str(k): str(v) for k, v in dict(data.get("lost") or {}).items()})


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    start: str
    argv: list[str]


def read_process(pid: int, proc: str = "/proc") -> Optional[Process]:
    """A process's parent, start time and command line from /proc (None: no such process)."""
    try:
        with open("%s/%d/stat" % (proc, pid), encoding="utf-8", errors="replace") as handle:
            stat = handle.read()
        with open("%s/%d/cmdline" % (proc, pid), "rb") as handle:
            argv = [arg.decode(errors="replace") for arg in handle.read().split(b"\0") if arg]
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)", which may hold spaces
    try:
        return Process(pid=pid, ppid=int(fields[1]), start=fields[19], argv=argv)
    except (IndexError, ValueError):
        return None


def playbook_process(pid: int, proc: str = "/proc") -> Optional[Process]:
    """The outermost ansible-playbook process among ``pid``'s ancestors: the run itself, not a worker it forked."""
    found: Optional[Process] = None
    seen = set()
    current = read_process(pid, proc)
    while current is not None and current.pid not in seen and current.pid > 1:
        seen.add(current.pid)
        if any(os.path.basename(arg) in PLAYBOOK_COMMANDS for arg in current.argv[:2]):
            found = current
        current = read_process(current.ppid, proc)
    return found


def boot_id(proc: str = "/proc") -> str:
    try:
        with open("%s/sys/kernel/random/boot_id" % proc, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _record_path(journal: str, run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise LockError("run_id %r cannot name a journal file: use letters, digits, '.', '_' and '-' only" % run_id)
    return os.path.join(journal, run_id + ".json")


def read_record(journal: str, run_id: str) -> Optional[RunRecord]:
    try:
        with open(_record_path(journal, run_id), encoding="utf-8") as handle:
            return RunRecord.from_dict(json.load(handle))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LockError("cannot read the run journal entry of %s in %s: %s" % (run_id, journal, exc))


def write_record(journal: str, record: RunRecord) -> None:
    path = _record_path(journal, record.run_id)
    try:
        os.makedirs(journal, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".run-", dir=journal)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record.as_dict(), handle, sort_keys=True)
            handle.write("\n")
        os.replace(temporary, path)
    except OSError as exc:
        raise LockError("cannot write the run journal %s: %s" % (journal, exc.strerror or exc))


def why_ended(record: RunRecord, controller: str, boot: str, proc: str = "/proc") -> Optional[str]:
    """Why ``record``'s run has certainly ended, or None when it may still run (or this controller cannot tell)."""
    if record.controller != controller or not record.boot_id:
        return None
    if record.boot_id != boot:
        return "the controller %s has restarted since it started" % controller
    if record.pid <= 0:
        return None
    process = read_process(record.pid, proc)
    if process is None or process.start != record.pid_start:
        return "its ansible-playbook process (pid %d on %s) is gone" % (record.pid, controller)
    return None


def ended_runs(journal: str, *, controller: str, boot: str, proc: str = "/proc") -> dict[str, dict[str, Any]]:
    """Runs of the journal that have certainly ended: run id -> holder, since, why, and the hosts it lost."""
    try:
        names = sorted(name for name in os.listdir(journal) if name.endswith(".json"))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise LockError("cannot read the run journal %s: %s" % (journal, exc.strerror or exc))
    ended: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            record = read_record(journal, name[:-len(".json")])
        except LockError:
            continue  # not one of ours, or half written by a run that crashed: it proves nothing
        why = why_ended(record, controller, boot, proc) if record else None
        if record is not None and why is not None:
            ended[record.run_id] = dict(holder=record.holder, since=record.since, why=why, lost=record.lost)
    return ended


def prune_journal(journal: str, ended: dict[str, dict[str, Any]], keep_days: int, now: datetime.datetime) -> list[str]:
    """Remove the records of ended runs older than ``keep_days``; their run ids."""
    removed = []
    for run_id, info in ended.items():
        try:
            since = datetime.datetime.strptime(str(info["since"]), "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            continue
        if (now - since).days >= keep_days:
            try:
                os.unlink(_record_path(journal, run_id))
            except OSError:
                continue
            removed.append(run_id)
    return removed


def this_controller() -> str:
    return socket.gethostname()


def journal_argument_spec() -> dict[str, Any]:
    """The options of dockhand.containers.deploy_run (its module, and its action when it runs in Ansible's process)."""
    return dict(
        journal=dict(type="path", default="~/.local/state/dockhand/runs"),
        run_id=dict(type="str", required=True),
        holder=dict(type="str", default="unknown"),
        lost=dict(type="dict"),
        keep_days=dict(type="int", default=30),
    )


def record_and_list(params: dict[str, Any], check_mode: bool) -> dict[str, Any]:
    """Record this run (or what it lost) and list the other runs that have ended; raises LockError."""
    journal = params["journal"]
    run_id = params["run_id"]
    controller, boot = this_controller(), boot_id()
    record = read_record(journal, run_id)
    changed = False
    if record is None:
        process = playbook_process(os.getpid())
        record = RunRecord(run_id=run_id, holder=params["holder"], since=iso(utc_now()), controller=controller,
                           boot_id=boot, pid=process.pid if process else 0, pid_start=process.start if process else "")
        changed = True
    if params["lost"]:
        lost = {**record.lost, **{str(k): str(v) for k, v in params["lost"].items()}}
        changed = changed or lost != record.lost
        record = dataclasses.replace(record, lost=lost)
    if changed and not check_mode:
        write_record(journal, record)
    ended = {key: value for key, value in ended_runs(journal, controller=controller, boot=boot).items()
             if key != run_id}
    pruned = [] if check_mode else prune_journal(journal, ended, params["keep_days"], utc_now())
    return dict(changed=changed, journal=journal, record=record.as_dict(),
                ended={key: value for key, value in ended.items() if key not in pruned}, pruned=pruned)
