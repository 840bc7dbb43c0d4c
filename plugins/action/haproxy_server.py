# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""haproxy_server on the controller without starting a module.

A rolling update drains and readies a server around every host, delegated to where haproxy's
socket is, which is often the controller itself. There, starting the module costs more than the
runtime API's answer (a second or more on a loaded controller), so this action runs the same
module_utils code in Ansible's own process. Anywhere else (another host, or with become, whose
privileges this process does not have) the module runs as usual.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.plugins.action import ActionBase

from ansible_collections.dockhand.containers.plugins.module_utils._haproxy import (
    HaproxyError, converge_from_params, server_argument_spec,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        if self._connection.transport != "local" or self._play_context.become:
            result.update(self._execute_module(task_vars=task_vars))
            return result
        _validation, params = self.validate_argument_spec(argument_spec=server_argument_spec())
        try:
            outcome = converge_from_params(params, check_mode=bool(self._task.check_mode))
        except HaproxyError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        result.update(outcome.as_dict(diff=bool(self._task.diff)))
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        return result
