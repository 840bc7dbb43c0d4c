#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_audit
short_description: Append one entry to a host's deploy audit log (JSON lines)
version_added: 0.1.0
description:
  - Appends one JSON object as one line to the audit log on the managed host, with the time (UTC, set by the
    module), the controller user, the AWX job id when there is one, the run, the outcome and, per service, the
    digest before and after.
  - The file and its directory are created when missing; existing lines are never rewritten.
  - Read the log back with M(dockhand.containers.deploy_audit_info).
  - It changes no Docker object, so it is not part of the C(dockhand.containers.docker) action group.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The audit log.
    type: path
    default: /var/log/dockhand/audit.jsonl
  result:
    description: The outcome on this host.
    type: str
    required: true
    choices: [updated, unchanged, rolled_back, failed, not_reached]
  user:
    description: Who ran the deploy (on the controller, or in AWX).
    type: str
    required: true
  run_id:
    description: The run's identifier, the same as the deploy lock's.
    type: str
    required: true
  awx_job_id:
    description: The AWX / Automation Controller job id, when the run is an AWX job.
    type: str
  playbook:
    description: What ran, such as C(deploy) or C(rollback).
    type: str
  note:
    description: A short explanation, such as why the host was rolled back.
    type: str
  services:
    description:
      - Per service, C(name), C(old) (the digest-pinned image before) and C(new) (after).
      - Mutually exclusive with O(before) and O(after).
    type: list
    elements: dict
    default: []
  before:
    description:
      - What ran before, as the C(services) that M(dockhand.containers.service_info) returns (C(name) and C(image)
        of each are used). With O(after), gives O(services) without writing it out.
    type: list
    elements: dict
  after:
    description: What runs after, in the same shape as O(before).
    type: list
    elements: dict
attributes:
  check_mode:
    support: full
    details: Returns the entry that would be appended; writes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Record what this run changed on the host
  dockhand.containers.deploy_audit:
    result: updated
    user: alice
    run_id: 20261129T231500-4821
    awx_job_id: "{{ awx_job_id | default(omit) }}"
    playbook: deploy
    services:
      - name: web
        old: registry.example.com/shop/web@sha256:0d5c0a5f0e7bd2b2c5c79a3a8e6de1b2b1b3a0d4c2f8e9a7b6c5d4e3f2a1b0c9
        new: registry.example.com/shop/web@sha256:2b3f2c0c8f6b6f6c7d1f0e8f4b4c2a4d5e6f708192a3b4c5d6e7f8091a2b3c4d
"""

RETURN = r"""
entry:
  description: The entry appended (in check mode, the one that would be).
  returned: success
  type: dict
  sample:
    time: "2026-11-29T23:15:02Z"
    user: alice
    awx_job_id: null
    run_id: 20261129T231500-4821
    result: updated
    services:
      - name: web
        old: registry.example.com/shop/web@sha256:0d5c...
        new: registry.example.com/shop/web@sha256:2b3f...
path:
  description: The audit log.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._audit import (
    RESULTS, AuditError, Entry, ServiceChange, append_entry, changes_from_info,
)
from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import iso, utc_now


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/log/dockhand/audit.jsonl"),
            result=dict(type="str", required=True, choices=list(RESULTS)),
            user=dict(type="str", required=True),
            run_id=dict(type="str", required=True),
            awx_job_id=dict(type="str"),
            playbook=dict(type="str"),
            note=dict(type="str"),
            services=dict(type="list", elements="dict", default=[]),
            before=dict(type="list", elements="dict"),
            after=dict(type="list", elements="dict"),
        ),
        required_together=[("before", "after")],
        supports_check_mode=True,
    )
    params = module.params
    if params["services"] and params["before"] is not None:
        module.fail_json(msg="give either services or before/after, not both")
    try:
        if params["before"] is not None:
            services = changes_from_info(params["before"], params["after"])
        else:
            services = [ServiceChange.from_param(item) for item in params["services"]]
        entry = Entry(time=iso(utc_now()), user=params["user"], run_id=params["run_id"], result=params["result"],
                      awx_job_id=params["awx_job_id"] or None, playbook=params["playbook"], note=params["note"],
                      services=services)
        if not module.check_mode:
            append_entry(params["path"], entry)
    except AuditError as exc:
        module.fail_json(msg=str(exc), path=params["path"])
    module.exit_json(changed=True, path=params["path"], entry=entry.as_dict())


if __name__ == "__main__":
    main()
