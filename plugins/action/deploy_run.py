# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_run on the controller without starting a module.

The run journal lives on the controller and every rolling run reads it; starting a module there
costs more than the work (a quarter of a second of an idempotent run's two), so this action runs
the same module_utils code in Ansible's own process (see plugin_utils/_in_process.py). The
ansible-playbook process it records is found among this process's ancestors, as the module finds
it among its own.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import (
    LockError, journal_argument_spec, record_and_list,
)
from ansible_collections.dockhand.containers.plugins.plugin_utils._in_process import InProcessAction


class ActionModule(InProcessAction):

    def argument_spec(self) -> dict[str, Any]:
        return journal_argument_spec()

    def run_here(self, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
        try:
            return record_and_list(params, check_mode=check_mode)
        except LockError as exc:
            return dict(failed=True, msg=str(exc))
