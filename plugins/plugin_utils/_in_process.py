# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module that, on the controller, runs inside Ansible's own process instead of being started.

Some of the collection's modules mostly run on the controller (delegated to localhost) and do less
work than starting a module costs: the haproxy runtime API, the controller's run journal. Their
action plugins subclass :class:`InProcessAction`: with a local connection and no become, the same
module_utils code runs in Ansible's process, validated against the module's own argument spec;
anywhere else (another host, or with become, whose privileges this process does not have) the
module runs as usual.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.plugins.action import ActionBase


class InProcessAction(ActionBase):

    TRANSFERS_FILES = False

    def argument_spec(self) -> dict[str, Any]:
        """The module's argument spec."""
        raise NotImplementedError

    def run_here(self, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
        """The module's work on validated ``params``: its result (``failed``/``msg`` on failure)."""
        raise NotImplementedError

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        if self._connection.transport != "local" or self._play_context.become:
            result.update(self._execute_module(task_vars=task_vars))
            return result
        _validation, params = self.validate_argument_spec(argument_spec=self.argument_spec())
        result.update(self.run_here(params, check_mode=bool(self._task.check_mode), diff=bool(self._task.diff)))
        return result
