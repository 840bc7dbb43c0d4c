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
  - Without O(state) and O(health) it only reports the server's state.
  - Runs where the socket is; for a remote load balancer, delegate the task to that host.
  - On the controller (a local connection without become, as with C(delegate_to=localhost)) its action plugin talks to
    the socket from Ansible's own process, so no module is started. Anywhere else the module runs on the host as usual.
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
  health:
    description:
      - Force the health checks' verdict through the runtime API (C(set server ... health)) before setting O(state),
        for a caller that has just checked the server itself, such as a rolling update whose own health and smoke
        checks passed. With V(up) and O(state=ready) the server takes traffic at once instead of after haproxy's
        C(rise) successful checks.
      - haproxy keeps checking; a server that then fails C(fall) checks goes down as usual.
      - Not given, the health checks alone decide. Refused by haproxy for a server that tracks another.
    type: str
    choices: [up, stopping, down]
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
    details: The administrative state before and after, and the operational state when O(health) changed it.
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

- name: Put it back at once, since this play has just checked its health itself
  dockhand.containers.haproxy_server:
    socket: /run/haproxy/admin.sock
    backend: app
    server: "{{ inventory_hostname }}"
    state: ready
    health: up
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
    HaproxyError, converge_from_params, server_argument_spec,
)


def main() -> None:
    module = AnsibleModule(argument_spec=server_argument_spec(), supports_check_mode=True)
    try:
        result = converge_from_params(module.params, check_mode=module.check_mode)
    except HaproxyError as exc:
        module.fail_json(msg=str(exc))
    for warning in result.warnings:
        module.warn(warning)
    module.exit_json(**result.as_dict(diff=module._diff))


if __name__ == "__main__":
    main()
