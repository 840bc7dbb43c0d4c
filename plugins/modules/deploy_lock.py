#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take or release a host's deploy lock, so two deploys never change one host at once
version_added: 0.1.0
description:
  - A deploy lock is a small JSON file on the managed host saying who deploys there, for which run, and since when.
  - Taking it (V(present)) fails when another run holds it, naming that run's holder and since when (and how long
    ago). A run may take its own lock again. Taking it is atomic, so of two deploys racing, one wins.
  - A lock left behind by a run that ended without releasing it is never judged stale by age. It is taken over
    when its run is in O(take_over) (runs known to have ended, from M(dockhand.containers.deploy_run)), or broken
    on purpose with O(force=true).
  - Releasing it (V(absent)) removes it only when this run holds it, unless O(force=true).
  - It changes no Docker object, so it is not part of the C(dockhand.containers.docker) action group.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The lock file. Its directory is created when missing.
    type: path
    default: /var/lib/dockhand/deploy.lock
  state:
    description: V(present) takes the lock, V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  run_id:
    description: Identifies this run; the lock is this run's when its C(run_id) is this one.
    type: str
    required: true
  holder:
    description: Who takes the lock, as shown to a deploy that finds it taken, such as C(alice@ctl1 (AWX job 42)).
    type: str
    default: unknown
  force:
    description:
      - With V(present), take the lock even when another run holds it (breaking a stale lock); the broken lock
        is returned in RV(previous).
      - With V(absent), remove the lock whoever holds it.
    type: bool
    default: false
  take_over:
    description:
      - With V(present), run ids of runs known to have ended (the RV(dockhand.containers.deploy_run#module:ended)
        of M(dockhand.containers.deploy_run)). A lock one of them left is taken over, reported in
        RV(taken_over) and RV(previous); a lock of any other run still refuses the deploy.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: Fails exactly as a real run would when another run holds the lock; writes nothing.
  diff_mode:
    support: full
    details: The lock's content before and after.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Take the deploy lock of every host before touching any
  dockhand.containers.deploy_lock:
    run_id: "{{ deploy_run_id }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}@{{ lookup('ansible.builtin.pipe', 'hostname') }}"

- name: Break the lock a crashed run left behind
  dockhand.containers.deploy_lock:
    run_id: "{{ deploy_run_id }}"
    holder: ops@ctl1
    force: true

- name: Take the lock, taking over one that a run known to have ended left behind
  dockhand.containers.deploy_lock:
    run_id: "{{ deploy_run_id }}"
    holder: ops@ctl1
    take_over: "{{ journal.ended | list }}"

- name: Release it
  dockhand.containers.deploy_lock:
    run_id: "{{ deploy_run_id }}"
    state: absent
"""

RETURN = r"""
lock:
  description: The lock after the task, or null when there is none; on failure, the lock another run holds.
  returned: always
  type: dict
  contains:
    holder:
      description: Who holds it.
      type: str
    run_id:
      description: The run that holds it.
      type: str
    since:
      description: When it was taken, ISO 8601 UTC.
      type: str
previous:
  description: The lock before the task (the broken one after O(force=true)), or null.
  returned: success
  type: dict
broken:
  description: Whether another run's lock was broken or removed (O(force=true)).
  returned: success
  type: bool
taken_over:
  description: Whether the lock of a run in O(take_over) was taken over (it is in RV(previous)).
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import (
    Holder, LockError, acquire, iso, outcome_warnings, release, run_id_problem, utc_now,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/lib/dockhand/deploy.lock"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            run_id=dict(type="str", required=True),
            holder=dict(type="str", default="unknown"),
            force=dict(type="bool", default=False),
            take_over=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = run_id_problem(params["run_id"])
    if problem:
        module.fail_json(msg=problem)
    try:
        if params["state"] == "present":
            outcome = acquire(params["path"], Holder(params["holder"], params["run_id"], iso(utc_now())),
                              force=params["force"], check_mode=module.check_mode, take_over=params["take_over"])
        else:
            outcome = release(params["path"], params["run_id"], force=params["force"], check_mode=module.check_mode)
    except LockError as exc:
        module.fail_json(msg=str(exc), path=params["path"], lock=exc.holder.as_dict() if exc.holder else None)
    for warning in outcome_warnings(outcome):
        module.warn(warning)
    module.exit_json(path=params["path"], **outcome.as_dict(diff=module._diff))


if __name__ == "__main__":
    main()
