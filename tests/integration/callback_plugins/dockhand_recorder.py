# Test-only callback: tests/integration/conftest.py enables it for every ansible-playbook run it makes.
from __future__ import annotations

DOCUMENTATION = """
name: dockhand_recorder
type: aggregate
short_description: Record every task result as JSON lines for dockhand's integration tests
description:
  - Appends one JSON object per task result (task name, host, status, action, the module's return) and one
    with the play recap to the file named by the E(DOCKHAND_RECORDER_FILE) environment variable.
  - Used only by tests/integration/conftest.py; the normal stdout callback still prints as usual.
requirements:
  - enabled with E(ANSIBLE_CALLBACKS_ENABLED=dockhand_recorder)
"""

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "dockhand_recorder"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("DOCKHAND_RECORDER_FILE")

    def _write(self, record: dict[str, Any]) -> None:
        if not self._path:
            return
        # Written as it happens, so a playbook that crashes before its recap still leaves its results.
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")

    def _record(self, result: Any, status: str, **extra: Any) -> None:
        returned = getattr(result, "result", None)
        if returned is None:  # ansible-core before 2.19
            returned = result._result
        self._write(
            {
                "type": "result",
                "task": result.task_name,
                "host": result._host.get_name(),
                "status": status,
                "action": result._task.action,
                "result": dict(returned),
                **extra,
            }
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        returned = getattr(result, "result", None) or result._result
        self._record(result, "changed" if returned.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "failed", ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        recap = {}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            recap[host] = {
                "ok": summary["ok"],
                "changed": summary["changed"],
                "failed": summary["failures"],
                "unreachable": summary["unreachable"],
                "skipped": summary["skipped"],
                "rescued": summary["rescued"],
                "ignored": summary["ignored"],
            }
        self._write({"type": "stats", "stats": recap})
