#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_apply
short_description: Converge a host of a rolling deploy, smoke-check it and record it in its audit log, in one round trip
version_added: 0.1.0
description:
  - The step of a rolling deploy that changes one host, after M(dockhand.containers.deploy_prepare) locked it and
    pulled its images. It does the following, in order, in one module run (one SSH round trip instead of three).
  - Converges the stack exactly as M(dockhand.containers.stack) does with the same options, which waits for each
    service's health check (O(services[].wait)) and fails when a service does not come up on its digest.
  - When O(smoke_url) is set and the converge succeeded, GETs that URL from the host until it answers
    O(smoke_status), as a C(uri) task with C(until) would; when it never does, the task fails, and the services stay
    as converged (the caller rolls them back, as it does after any failed step).
  - When O(audit_path) is set and both succeeded, appends the update to the host's audit log as
    M(dockhand.containers.deploy_audit) does (result C(updated); per service the image before, from O(before), and
    after, from the converge). The record is written by the run that made the change, so a controller lost right
    after it still leaves the record on the host. A failed task writes no entry; the caller records the outcome of
    what it does next (a rollback).
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.stack_services
  - dockhand.containers.registry
  - dockhand.containers.connection
seealso:
  - module: dockhand.containers.stack
    description: The converge alone.
  - module: dockhand.containers.deploy_prepare
    description: The step before it (lock, plan and pull).
  - module: dockhand.containers.deploy_audit
    description: An audit entry alone (used for the outcomes other than an update).
options:
  name:
    description: Name of the stack, as O(dockhand.containers.stack#module:name).
    type: str
    required: true
  prune:
    description: As O(dockhand.containers.stack#module:prune).
    type: bool
    default: false
  parallelism:
    description: As O(dockhand.containers.stack#module:parallelism).
    type: int
    default: 4
  smoke_url:
    description:
      - A URL the host must answer after the converge, as seen from the host (for example
        C(http://127.0.0.1:8080/health)). Not checked when unset or empty.
    type: str
  smoke_status:
    description: The HTTP status O(smoke_url) must answer with.
    type: int
    default: 200
  smoke_retries:
    description: How many more times O(smoke_url) is tried after a first answer that is not O(smoke_status).
    type: int
    default: 5
  smoke_delay:
    description: Seconds between two tries of O(smoke_url).
    type: float
    default: 2
  smoke_timeout:
    description: Seconds one try of O(smoke_url) may take.
    type: float
    default: 10
  audit_path:
    description: The host's audit log, as O(dockhand.containers.deploy_audit#module:path). No entry when unset.
    type: path
  run_id:
    description: The run's identifier, the same as the deploy lock's. Required with O(audit_path).
    type: str
  user:
    description: Who runs the deploy. Required with O(audit_path).
    type: str
  awx_job_id:
    description: The AWX / Automation Controller job id, when the run is an AWX job.
    type: str
  playbook:
    description: Which playbook made the change (C(deploy), C(rollback)).
    type: str
  note:
    description: Free text for the audit entry (for example that this run took the host over from another).
    type: str
  before:
    description:
      - What ran in the stack before this run, as RV(dockhand.containers.service_info#module:services) or
        RV(dockhand.containers.deploy_prepare#module:running) (name and image of each service), the audit entry's old
        images.
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    details: The converge is predicted; the URL is not checked and no entry is written (RV(audit) shows it).
  diff_mode:
    support: full
    details: As M(dockhand.containers.stack).
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Converge this host, check it answers and record the update
  dockhand.containers.deploy_apply:
    name: shop
    services:
      - name: web
        image: registry.example.com/shop/web@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945
        ports: ["8080:8080"]
        wait: healthy
    smoke_url: http://127.0.0.1:8080/health
    audit_path: /var/log/dockhand/audit.jsonl
    run_id: "{{ run_id }}"
    user: "{{ lookup('ansible.builtin.env', 'USER') }}"
    playbook: deploy
    before: "{{ prepared.running }}"
"""

RETURN = r"""
changed:
  description: Whether the converge changed anything.
  returned: always
  type: bool
services:
  description: Per service, as RV(dockhand.containers.stack#module:services).
  returned: success
  type: dict
order:
  description: As RV(dockhand.containers.stack#module:order).
  returned: success
  type: list
  elements: str
pruned:
  description: As RV(dockhand.containers.stack#module:pruned).
  returned: success
  type: list
  elements: str
pulled:
  description: As RV(dockhand.containers.stack#module:pulled).
  returned: success
  type: list
  elements: str
summary:
  description: As RV(dockhand.containers.stack#module:summary).
  returned: success
  type: dict
after:
  description: What runs in the stack after the converge, name and image of each service.
  returned: success
  type: list
  elements: dict
smoke:
  description: The smoke check (C(url), C(status), C(attempts)); null when no URL was given or in check mode.
  returned: success
  type: dict
audit:
  description: The audit entry written (in check mode, the one a real run would write); null without O(audit_path).
  returned: success
  type: dict
smoke_failed:
  description: On failure, whether it was the smoke check that failed (the converge itself succeeded).
  returned: failure
  type: bool
"""

from typing import Any, Optional

from ansible_collections.dockhand.containers.plugins.module_utils._audit import (
    AuditError, Entry, append_entry, changes_from_info, services_after,
)
from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import iso, run_id_problem, utc_now
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine
from ansible_collections.dockhand.containers.plugins.module_utils._smoke import Smoke, SmokeError, check
from ansible_collections.dockhand.containers.plugins.module_utils._stack_module import converge, stack_module


def main() -> None:
    module, specs = stack_module(dict(
        smoke_url=dict(type="str"),
        smoke_status=dict(type="int", default=200),
        smoke_retries=dict(type="int", default=5),
        smoke_delay=dict(type="float", default=2),
        smoke_timeout=dict(type="float", default=10),
        audit_path=dict(type="path"),
        run_id=dict(type="str"),
        user=dict(type="str"),
        awx_job_id=dict(type="str"),
        playbook=dict(type="str"),
        note=dict(type="str"),
        before=dict(type="list", elements="dict", default=[]),
    ), required_by=dict(audit_path=("run_id", "user")))
    params = module.params
    smoke: Optional[Smoke] = None
    if params["smoke_url"]:
        smoke = Smoke(params["smoke_url"], params["smoke_status"], params["smoke_retries"], params["smoke_delay"],
                      params["smoke_timeout"])
        problems = smoke.problems()
        if problems:
            module.fail_json(msg="; ".join(problems))
    if params["audit_path"]:
        problem = run_id_problem(params["run_id"])
        if problem:
            module.fail_json(msg=problem)
    result = converge(module, Engine.from_module(module), specs, check_mode=module.check_mode)
    converged = result.as_dict(diff=module._diff)
    after = services_after(params["before"], converged["services"], converged["pruned"])

    smoked: Optional[dict[str, Any]] = None
    if smoke is not None and not module.check_mode:
        try:
            smoked = check(smoke)
        except SmokeError as exc:
            module.fail_json(msg="stack %s converged, but the %s" % (params["name"], exc), smoke_failed=True,
                             after=after, **converged)

    entry: Optional[dict[str, Any]] = None
    if params["audit_path"]:
        record = Entry(time=iso(utc_now()), user=params["user"], run_id=params["run_id"], result="updated",
                       awx_job_id=params["awx_job_id"] or None, playbook=params["playbook"], note=params["note"],
                       services=changes_from_info(params["before"], after))
        if not module.check_mode:
            try:
                append_entry(params["audit_path"], record)
            except AuditError as exc:
                module.fail_json(msg="stack %s converged, but %s" % (params["name"], exc), after=after, **converged)
        entry = record.as_dict()
    module.exit_json(after=after, smoke=smoked, audit=entry, **converged)


if __name__ == "__main__":
    main()
