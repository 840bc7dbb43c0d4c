from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import (
    Holder, LockError, RunRecord, acquire, describe, ended_runs, playbook_process, prune_journal, read_lock,
    read_record, release, write_record,
)

ALICE = Holder(holder="alice@ctl1 (AWX job 42)", run_id="r1", since="2026-11-29T23:00:00Z")
BOB = Holder(holder="bob@ctl2", run_id="r2", since="2026-11-29T23:05:00Z")


def later(minutes: int) -> datetime.datetime:
    return datetime.datetime(2026, 11, 29, 23, 0, tzinfo=datetime.timezone.utc) + datetime.timedelta(minutes=minutes)


def test_first_deploy_takes_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "deploy.lock"
    outcome = acquire(str(path), ALICE, force=False, check_mode=False)
    assert outcome.changed and outcome.previous is None
    assert json.loads(path.read_text()) == ALICE.as_dict()
    assert [p.name for p in path.parent.iterdir()] == ["deploy.lock"]  # no temporary file left


def test_second_deploy_is_refused_with_holder_and_since(tmp_path: Path) -> None:
    path = str(tmp_path / "deploy.lock")
    acquire(path, ALICE, force=False, check_mode=False)
    with pytest.raises(LockError, match=r"alice@ctl1 \(AWX job 42\) \(run r1\) since 2026-11-29T23:00:00Z \(12 min ago\)"):
        acquire(path, BOB, force=False, check_mode=False, now=lambda: later(12))
    assert read_lock(path) == ALICE


def test_the_same_run_takes_its_lock_again_without_change(tmp_path: Path) -> None:
    path = str(tmp_path / "deploy.lock")
    acquire(path, ALICE, force=False, check_mode=False)
    assert not acquire(path, ALICE, force=False, check_mode=False).changed


def test_force_breaks_a_stale_lock_and_returns_it(tmp_path: Path) -> None:
    path = str(tmp_path / "deploy.lock")
    acquire(path, ALICE, force=False, check_mode=False)
    outcome = acquire(path, BOB, force=True, check_mode=False)
    assert outcome.broken and outcome.previous == ALICE
    assert read_lock(path) == BOB


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "deploy.lock"
    assert acquire(str(path), ALICE, force=False, check_mode=True).changed
    assert not path.exists()


def test_release_removes_only_this_runs_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "deploy.lock")
    acquire(path, ALICE, force=False, check_mode=False)
    with pytest.raises(LockError, match="belongs to another run: alice@ctl1"):
        release(path, "r2", force=False, check_mode=False)
    assert read_lock(path) == ALICE
    assert release(path, "r1", force=False, check_mode=False).changed
    assert read_lock(path) is None
    assert not release(path, "r1", force=False, check_mode=False).changed


def test_unreadable_lock_still_blocks(tmp_path: Path) -> None:
    path = tmp_path / "deploy.lock"
    path.write_text("garbage")
    with pytest.raises(LockError, match="unreadable lock file"):
        acquire(str(path), ALICE, force=False, check_mode=False)


def test_age_is_shown_in_hours_for_old_locks() -> None:
    assert describe(ALICE, later(300)).endswith("(5.0 h ago)")


def test_the_lock_of_a_run_known_to_have_ended_is_taken_over_and_any_other_still_refuses(tmp_path: Path) -> None:
    path = str(tmp_path / "deploy.lock")
    acquire(path, ALICE, force=False, check_mode=False)
    with pytest.raises(LockError, match="another deploy holds this host"):
        acquire(path, BOB, force=False, check_mode=False, take_over=["r0", "r9"])
    outcome = acquire(path, BOB, force=False, check_mode=False, take_over=["r1"])
    assert outcome.taken_over and not outcome.broken and outcome.previous == ALICE
    assert read_lock(path) == BOB


def fake_process(proc: Path, pid: int, ppid: int, start: str, *argv: str) -> None:
    """A /proc/<pid> with the stat fields read_process uses (ppid is field 4, start time field 22)."""
    directory = proc / str(pid)
    directory.mkdir(parents=True)
    fields = ["S", str(ppid)] + ["0"] * 17 + [start, "0"]
    (directory / "stat").write_text("%d (a comm) with) %s\n" % (pid, " ".join(fields)))
    (directory / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in argv) + b"\0")


def test_the_run_is_the_outermost_ansible_playbook_process_not_the_worker_it_forked(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    fake_process(proc, 100, 1, "500", "bash")
    fake_process(proc, 200, 100, "600", "/venv/bin/python3", "/venv/bin/ansible-playbook", "deploy.yml")
    fake_process(proc, 300, 200, "700", "/venv/bin/python3", "/venv/bin/ansible-playbook", "deploy.yml")  # worker
    fake_process(proc, 400, 300, "800", "/usr/bin/python3", "/root/.ansible/tmp/AnsiballZ_deploy_run.py")
    found = playbook_process(400, str(proc))
    assert found is not None and (found.pid, found.start) == (200, "600")
    assert playbook_process(100, str(proc)) is None


def record(run_id: str, pid: int, start: str, boot: str = "boot-1", controller: str = "ctl1",
           since: str = "2026-11-29T23:00:00Z") -> RunRecord:
    return RunRecord(run_id=run_id, holder="alice@" + controller, since=since, controller=controller, boot_id=boot,
                     pid=pid, pid_start=start)


def test_ended_runs_are_those_whose_process_is_gone_or_reused_or_whose_controller_restarted(tmp_path: Path) -> None:
    proc, journal = tmp_path / "proc", str(tmp_path / "runs")
    fake_process(proc, 200, 1, "600", "python3", "/usr/bin/ansible-playbook")
    write_record(journal, record("running", 200, "600"))
    write_record(journal, record("gone", 201, "601"))
    write_record(journal, record("reused-pid", 200, "599"))
    write_record(journal, record("before-reboot", 200, "600", boot="boot-0"))
    write_record(journal, record("other-controller", 201, "601", controller="ctl2"))
    write_record(journal, record("no-process-found", 0, ""))
    (Path(journal) / "garbage.json").write_text("{")
    ended = ended_runs(journal, controller="ctl1", boot="boot-1", proc=str(proc))
    assert sorted(ended) == ["before-reboot", "gone", "reused-pid"]
    assert ended["gone"]["why"] == "its ansible-playbook process (pid 201 on ctl1) is gone"
    assert ended["before-reboot"]["why"] == "the controller ctl1 has restarted since it started"
    assert ended_runs(str(tmp_path / "none"), controller="ctl1", boot="boot-1") == {}


def test_a_record_keeps_the_hosts_a_run_lost_and_old_ended_records_are_pruned(tmp_path: Path) -> None:
    journal = str(tmp_path / "runs")
    write_record(journal, RunRecord(**{**record("r1", 5, "1").as_dict(), "lost": {"web2": "lost mid-roll"}}))
    assert read_record(journal, "r1") == RunRecord(**{**record("r1", 5, "1").as_dict(), "lost": {"web2": "lost mid-roll"}})
    ended = {"r1": {"since": "2026-11-29T23:00:00Z"}, "r2": {"since": "2026-10-01T00:00:00Z"}}
    write_record(journal, record("r2", 6, "1", since="2026-10-01T00:00:00Z"))
    assert prune_journal(journal, ended, 30, later(0)) == ["r2"]
    assert read_record(journal, "r2") is None and read_record(journal, "r1") is not None
    with pytest.raises(LockError, match="cannot name a journal file"):
        read_record(journal, "../etc/passwd")
