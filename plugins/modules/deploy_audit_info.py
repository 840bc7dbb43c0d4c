#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_audit_info
short_description: Read the last entries of a host's deploy audit log
version_added: 0.1.0
description:
  - Returns the last entries of the JSON-lines audit log that M(dockhand.containers.deploy_audit) appends to,
    oldest first. A missing log has no entries. Lines that are not JSON objects are skipped and counted.
  - It reads no Docker object, so it is not part of the C(dockhand.containers.docker) action group.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The audit log.
    type: path
    default: /var/log/dockhand/audit.jsonl
  last:
    description: How many of the last entries to return.
    type: int
    default: 10
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
- name: Read the last five deploys of each host
  dockhand.containers.deploy_audit_info:
    last: 5
  register: audit
"""

RETURN = r"""
entries:
  description: The last entries, oldest first, as written by M(dockhand.containers.deploy_audit).
  returned: success
  type: list
  elements: dict
skipped:
  description: Lines among the last O(last) that were not JSON objects.
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._audit import AuditError, last_entries


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/log/dockhand/audit.jsonl"),
            last=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    if module.params["last"] < 0:
        module.fail_json(msg="last must be 0 or more (got %d)" % module.params["last"])
    try:
        entries, skipped = last_entries(module.params["path"], module.params["last"])
    except AuditError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, entries=entries, skipped=skipped)


if __name__ == "__main__":
    main()
