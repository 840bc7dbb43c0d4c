from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._audit import (
    AuditError, Entry, ServiceChange, append_entry, changes_from_info, last_entries, services_after,
)


def entry(result: str, run_id: str = "r1") -> Entry:
    return Entry(time="2026-11-29T23:00:00Z", user="alice", run_id=run_id, result=result, awx_job_id="42",
                 services=[ServiceChange("web", "repo@sha256:aa", "repo@sha256:bb")])


def test_entries_are_appended_as_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "log" / "audit.jsonl"
    append_entry(str(path), entry("updated", "r1"))
    append_entry(str(path), entry("rolled_back", "r2"))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["r1", "r2"]
    assert json.loads(lines[0]) == {"time": "2026-11-29T23:00:00Z", "user": "alice", "awx_job_id": "42", "run_id": "r1",
                                    "result": "updated",
                                    "services": [{"name": "web", "old": "repo@sha256:aa", "new": "repo@sha256:bb"}]}


def test_last_entries_oldest_first_skipping_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    for run in ("r1", "r2", "r3"):
        append_entry(str(path), entry("updated", run))
    with path.open("a") as handle:
        handle.write("not json\n")
    entries, skipped = last_entries(str(path), 3)
    assert [e["run_id"] for e in entries] == ["r2", "r3"] and skipped == 1


def test_missing_log_has_no_entries(tmp_path: Path) -> None:
    assert last_entries(str(tmp_path / "none.jsonl"), 5) == ([], 0)


def test_changes_pair_services_by_name() -> None:
    before = [{"name": "web", "image": "r@sha256:1"}, {"name": "old", "image": "r@sha256:9"}]
    after = [{"name": "web", "image": "r@sha256:2"}, {"name": "new", "image": "r@sha256:3"}]
    assert changes_from_info(before, after) == [ServiceChange("new", None, "r@sha256:3"),
                                                ServiceChange("old", "r@sha256:9", None),
                                                ServiceChange("web", "r@sha256:1", "r@sha256:2")]


def test_service_items_need_a_name_and_known_keys() -> None:
    with pytest.raises(AuditError, match="needs a name"):
        ServiceChange.from_param({"old": "x"})
    with pytest.raises(AuditError, match="unknown keys digest"):
        ServiceChange.from_param({"name": "web", "digest": "x"})


def test_unwritable_log_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuditError, match="cannot append to the audit log .*file/audit.jsonl"):
        append_entry(str(blocker / "audit.jsonl"), entry("updated"))


def test_services_after_lay_the_converge_over_what_ran_before() -> None:
    before = [dict(name="web", image="r/web@sha256:aa", digest="x"), dict(name="db", image="r/db@sha256:11"),
              dict(name="old", image="r/old@sha256:22")]
    outcomes = {"web": dict(outcome="converged", image="r/web@sha256:bb", state="started"),
                "cache": dict(outcome="converged", image="r/cache@sha256:33", state="started"),
                "gone": dict(outcome="converged", state="absent")}
    after = services_after(before, outcomes, removed=["old"])
    assert after == [dict(name="db", image="r/db@sha256:11"), dict(name="web", image="r/web@sha256:bb"),
                     dict(name="cache", image="r/cache@sha256:33")]
    changes = {c.name: (c.old, c.new) for c in changes_from_info(before, after)}
    assert changes == {"web": ("r/web@sha256:aa", "r/web@sha256:bb"), "db": ("r/db@sha256:11", "r/db@sha256:11"),
                       "old": ("r/old@sha256:22", None), "cache": (None, "r/cache@sha256:33")}
