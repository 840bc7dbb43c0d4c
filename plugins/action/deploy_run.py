# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy_run on the controller without starting a module.

The run journal lives on the controller and every rolling run reads it twice; starting a module
there costs more than the work (a quarter of a second of an idempotent run's three). Delegated to
the controller (a local connection without become), this action runs the same module_utils code in
Ansible's own process; anywhere else the module runs as usual. The ansible-playbook process it
records is found among this process's ancestors, as the module finds it among its own.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.plugins.action import ActionBase

from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import (
    LockError, journal_argument_spec, record_and_list,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        if self._connection.transport != "local" or self._play_context.become:
            result.update(self._execute_module(task_vars=task_vars))
            return result
        _validation, params = self.validate_argument_spec(argument_spec=journal_argument_spec())
        try:
            result.update(record_and_list(params, check_mode=bool(self._task.check_mode)))
        except LockError as exc:
            result.update(failed=True, msg=str(exc))
        return result
