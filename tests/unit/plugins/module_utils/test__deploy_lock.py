from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import (
    Holder, LockError, acquire, describe, read_lock, release,
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
