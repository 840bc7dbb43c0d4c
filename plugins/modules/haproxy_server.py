#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: haproxy_server
short_description: Drain, ready or put in maintenance one haproxy server through the runtime API, and wait for it
version_added: 0.1.0
description:
  - Reads and sets the administrative state of one server of an haproxy backend through haproxy's runtime API
    (the C(stats socket) with C(level admin)), then waits until the server has settled in that state, that is
    no connections left after V(drain) or V(maint), or the health checks saying up after V(ready).
  - Without O(state) it only reports the server's state.
  - Runs where the socket is; for a remote load balancer, delegate the task to that host.
  - It talks to haproxy only, so it is not part of the C(dockhand.containers.docker) action group.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  socket:
    description:
      - haproxy's runtime API, as the path of its unix socket or as C(host:port) for a TCP C(stats socket).
    type: str
    required: true
  backend:
    description: The backend (C(backend) or C(listen) section) the server belongs to.
    type: str
    required: true
  server:
    description: The server's name in that backend.
    type: str
    required: true
  state:
    description:
      - V(ready) takes traffic; V(drain) takes no new connections but finishes current ones; V(maint) takes
        no traffic and is not health-checked.
      - Not given, nothing changes and the state is reported.
    type: str
    choices: [ready, drain, maint]
  wait:
    description:
      - Wait until the server has settled, that is no current connections after V(drain) or V(maint), or
        its health checks saying up after V(ready) (at once when it has no health check).
    type: bool
    default: true
  wait_timeout:
    description: Seconds O(wait) may take before the task fails, leaving the server in the state it was set to.
    type: int
    default: 60
  timeout:
    description: Seconds to wait for one answer of the runtime API.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    details: Reports the state the server would be put in; nothing is set and nothing is waited for.
  diff_mode:
    support: full
    details: The administrative state before and after.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Take this host out of the load balancer and let its connections finish
  dockhand.containers.haproxy_server:
    socket: /run/haproxy/admin.sock
    backend: app
    server: "{{ inventory_hostname }}"
    state: drain
    wait_timeout: 120
  delegate_to: lb1.example.com

- name: Put it back once its health checks pass
  dockhand.containers.haproxy_server:
    socket: /run/haproxy/admin.sock
    backend: app
    server: "{{ inventory_hostname }}"
    state: ready
  delegate_to: lb1.example.com

- name: Read a server's state
  dockhand.containers.haproxy_server:
    socket: 127.0.0.1:9999
    backend: app
    server: web3
  register: web3_lb
"""

RETURN = r"""
backend:
  description: The backend.
  returned: success
  type: str
server:
  description: The server.
  returned: success
  type: str
admin:
  description: Administrative state after the task, V(ready), V(drain) or V(maint).
  returned: success
  type: str
  sample: drain
previous:
  description: Administrative state before the task.
  returned: success
  type: str
  sample: ready
operational:
  description: What the health checks say, V(up), V(down), V(starting) or V(stopping).
  returned: success
  type: str
sessions:
  description: Connections the server had when the task ended.
  returned: success
  type: int
status:
  description: haproxy's own status text for the server, such as C(UP), C(DRAIN), C(MAINT) or C(DOWN).
  returned: success
  type: str
maint_elsewhere:
  description: Whether the server is in maintenance through haproxy's configuration, tracking or DNS as well.
  returned: success
  type: bool
waited:
  description: Seconds spent waiting for the server to settle.
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._haproxy import (
    ADMIN_STATES, HaproxyError, RuntimeApi, converge_server,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="str", required=True),
            backend=dict(type="str", required=True),
            server=dict(type="str", required=True),
            state=dict(type="str", choices=list(ADMIN_STATES)),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=60),
            timeout=dict(type="int", default=5),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for option in ("wait_timeout", "timeout"):
        if params[option] <= 0:
            module.fail_json(msg="%s must be a positive number of seconds (got %d)" % (option, params[option]))
    try:
        result = converge_server(RuntimeApi(params["socket"], params["timeout"]), params["backend"], params["server"],
                                 params["state"], wait=params["wait"], wait_timeout=params["wait_timeout"],
                                 check_mode=module.check_mode)
    except HaproxyError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.warnings:
        module.warn(warning)
    module.exit_json(**result.as_dict(diff=module._diff))


if __name__ == "__main__":
    main()
