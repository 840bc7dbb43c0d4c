#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service_info
short_description: Report the services this collection manages on a host, with their digests and drift
version_added: 0.1.0
description:
  - Lists the containers deployed by M(dockhand.containers.service) or M(dockhand.containers.stack) on one Engine, with
    the digest each runs, its spec hash, restart count, health and volumes.
  - C(drift) names the settings the Engine reports differently from what the collection applied (for example a
    restart policy changed by hand with C(docker update)); the collection's own in-place updates are not drift.
    Compare C(digest) across hosts to see version drift.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.connection
seealso:
  - module: dockhand.containers.service
    description: Deploys what this module reports.
  - module: dockhand.containers.stack
    description: Deploys whole stacks; O(stack) filters by one.
options:
  name:
    description: Only these services.
    type: list
    elements: str
    default: []
  stack:
    description: Only the services of this stack.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: Read only.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Collect what runs on every host
  dockhand.containers.service_info:
  register: running

- name: Fail when hosts run different builds of web
  ansible.builtin.assert:
    that: >-
      ansible_play_hosts | map('extract', hostvars, ['running', 'services'])
      | map('selectattr', 'name', 'equalto', 'web') | map('map', attribute='digest') | flatten | unique | length == 1
  run_once: true
"""

RETURN = r"""
services:
  description: One entry per managed service, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service name.
      type: str
    container_id:
      description: Container ID.
      type: str
    image:
      description: The digest-pinned reference it runs.
      type: str
    digest:
      description: The digest it runs.
      type: str
    spec_hash:
      description: Hash of the applied spec (with in-place updates); equal hashes mean equal settings.
      type: str
    previous_image:
      description: The reference deployed before, for rollback.
      type: str
    stack:
      description: Stack the service belongs to, if any.
      type: str
    state:
      description: Engine state, such as C(running) or C(exited).
      type: str
    health:
      description: Health status, if it has a health check.
      type: str
    restart_count:
      description: How often the Engine restarted it.
      type: int
    started_at:
      description: When it was last started.
      type: str
    volumes:
      description: Named volumes mounted.
      type: list
      elements: dict
      contains:
        name:
          description: Volume name.
          type: str
        target:
          description: Mount path in the container.
          type: str
        driver:
          description: Volume driver.
          type: str
    drift:
      description:
        - Settings the Engine reports differently from what the collection last applied (the recorded spec with its
          own in-place updates), for example after a manual C(docker update).
      type: list
      elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._info import managed_services


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", default=[]),
            stack=dict(type="str"),
            **connection_argument_spec(),
        ),
        supports_check_mode=True,
    )
    engine = Engine.from_module(module)
    try:
        services = managed_services(engine, module.params["name"], module.params["stack"])
    except EngineError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, services=services)


if __name__ == "__main__":
    main()
