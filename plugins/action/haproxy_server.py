# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""haproxy_server on the controller without starting a module.

A rolling update drains and readies a server around every host, delegated to where haproxy's
socket is, which is often the controller itself. There, starting the module costs more than the
runtime API's answer (a second or more on a loaded controller), so this action runs the same
module_utils code in Ansible's own process (see plugin_utils/_in_process.py).
"""

from __future__ import annotations

from typing import Any

from ansible_collections.dockhand.containers.plugins.module_utils._haproxy import (
    HaproxyError, converge_from_params, server_argument_spec,
)
from ansible_collections.dockhand.containers.plugins.plugin_utils._in_process import InProcessAction


class ActionModule(InProcessAction):

    def argument_spec(self) -> dict[str, Any]:
        return server_argument_spec()

    def run_here(self, params: dict[str, Any], check_mode: bool, diff: bool) -> dict[str, Any]:
        try:
            outcome = converge_from_params(params, check_mode=check_mode)
        except HaproxyError as exc:
            return dict(failed=True, msg=str(exc))
        result = outcome.as_dict(diff=diff)
        if outcome.warnings:
            result["warnings"] = outcome.warnings
        return result
