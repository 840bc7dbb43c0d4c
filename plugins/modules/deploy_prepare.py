#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_prepare
short_description: Lock a host for a rolling deploy, plan its change and pull its images, in one round trip
version_added: 0.1.0
description:
  - The first step of a rolling deploy on one host, before any host is changed. It does the following, in order, in
    one module run (one SSH round trip instead of four).
  - Takes the host's deploy lock exactly as M(dockhand.containers.deploy_lock) does (a lock of another run fails
    the task naming its holder; O(take_over) and O(force) as there).
  - Reads what runs in the stack, as M(dockhand.containers.service_info) with O(name) as its stack would (RV(running)).
  - Predicts what M(dockhand.containers.stack) would do with O(services) (RV(plan), its check mode result).
  - When the host needs a change, pulls the images of O(services) the host lacks (RV(pulled)), as
    M(dockhand.containers.image_pull) does; a failed pull fails the task.
  - When the host needs no change and its lock was not taken over or broken, releases the lock again
    (O(release_unchanged)); such a host is left out of the rest of the run.
  - A failure after the lock was taken releases it again, so a failed task never leaves this run's lock behind.
  - Changes nothing on the host but the lock (which lives only for the run) and the pulled images.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.stack_services
  - dockhand.containers.registry
  - dockhand.containers.connection
seealso:
  - module: dockhand.containers.deploy_lock
    description: The lock alone, and its release at the end of the run.
  - module: dockhand.containers.stack
    description: The converge this module predicts.
  - module: dockhand.containers.deploy_run
    description: The controller's run journal that says which runs have ended (O(take_over)).
options:
  name:
    description: Name of the stack, as O(dockhand.containers.stack#module:name).
    type: str
    required: true
  prune:
    description: Predict with O(dockhand.containers.stack#module:prune), as the converge will run.
    type: bool
    default: false
  parallelism:
    description: How many images are pulled at once.
    type: int
    default: 4
  lock_path:
    description: The deploy lock file, as O(dockhand.containers.deploy_lock#module:path).
    type: path
    default: /var/lib/dockhand/deploy.lock
  run_id:
    description: Identifies this run, as O(dockhand.containers.deploy_lock#module:run_id).
    type: str
    required: true
  holder:
    description: Who takes the lock, as O(dockhand.containers.deploy_lock#module:holder).
    type: str
    default: unknown
  force:
    description: Break another run's lock, as O(dockhand.containers.deploy_lock#module:force).
    type: bool
    default: false
  take_over:
    description: Runs known to have ended, as O(dockhand.containers.deploy_lock#module:take_over).
    type: list
    elements: str
    default: []
  pull:
    description: Pull the images the host lacks when it needs a change.
    type: bool
    default: true
  release_unchanged:
    description: Release the lock again when the host needs no change (and its lock was not taken over or broken).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: The lock is checked but not written, nothing is pulled; RV(plan) and RV(running) are as in a real run.
  diff_mode:
    support: none
    details: RV(plan) holds no diff; the converge shows it.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Lock each host, plan its change and pull its images before any host is touched
  dockhand.containers.deploy_prepare:
    name: shop
    services:
      - name: web
        image: registry.example.com/shop/web@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945
        ports: ["8080:8080"]
    run_id: "{{ run_id }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}@controller"
  register: prepared

- name: Only the hosts that change go on
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }} changes: {{ prepared.plan.summary }}"
  when: prepared.needs_change
"""

RETURN = r"""
needs_change:
  description:
    - Whether the host goes through the deploy, that is the converge would change something, or the lock was taken
      over from (or broken for) a run that may have left it half done.
  returned: success
  type: bool
locked:
  description: Whether this run holds the host's lock after the task (false when it was released as unchanged).
  returned: success
  type: bool
lock:
  description:
    - The lock outcome, as M(dockhand.containers.deploy_lock) returns it (C(lock), C(previous), C(broken),
      C(taken_over)).
  returned: success
  type: dict
plan:
  description: What the converge would do, as M(dockhand.containers.stack) returns it in check mode.
  returned: success
  type: dict
running:
  description: What ran in the stack before this run, as RV(dockhand.containers.service_info#module:services).
  returned: success
  type: list
  elements: dict
pulled:
  description: The images pulled (in check mode, those a real run would pull).
  returned: success
  type: list
  elements: str
lock_released:
  description: On failure, whether the lock this task had taken was released again.
  returned: failure
  type: bool
"""

from typing import Optional

from ansible_collections.dockhand.containers.plugins.module_utils._connection import ConnectionParams
from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import (
    Holder, LockError, acquire, iso, outcome_warnings, release, run_id_problem, utc_now,
)
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._info import managed_services
from ansible_collections.dockhand.containers.plugins.module_utils._registry import (
    RegistryError, pull_auth, tag_resolver,
)
from ansible_collections.dockhand.containers.plugins.module_utils._stack import (
    StackError, converge_stack, pull_missing, wanted_images,
)
from ansible_collections.dockhand.containers.plugins.module_utils._stack_module import stack_module


def main() -> None:
    module, specs = stack_module(dict(
        lock_path=dict(type="path", default="/var/lib/dockhand/deploy.lock"),
        run_id=dict(type="str", required=True),
        holder=dict(type="str", default="unknown"),
        force=dict(type="bool", default=False),
        take_over=dict(type="list", elements="str", default=[]),
        pull=dict(type="bool", default=True),
        release_unchanged=dict(type="bool", default=True),
    ))
    params = module.params
    problem = run_id_problem(params["run_id"])
    if problem:
        module.fail_json(msg=problem)
    engine = Engine.from_module(module)  # before the lock: a missing SDK or engine setting fails with nothing taken

    try:
        outcome = acquire(params["lock_path"], Holder(params["holder"], params["run_id"], iso(utc_now())),
                          force=params["force"], check_mode=module.check_mode, take_over=params["take_over"])
    except LockError as exc:
        module.fail_json(msg=str(exc), path=params["lock_path"], lock=exc.holder.as_dict() if exc.holder else None,
                         lock_released=False)

    connection = ConnectionParams.from_params(params)
    resolve = tag_resolver(engine, params)
    error: Optional[str] = None
    try:
        running = managed_services(engine, [], params["name"])
        plan = converge_stack(engine, lambda: Engine(connection, engine.api_version), params["name"], specs,
                              resolve=resolve, check_mode=True, prune=params["prune"],
                              parallelism=params["parallelism"], registry_auth=pull_auth(params))
        needs_change = plan.changed or outcome.broken or outcome.taken_over
        pulled: list[str] = []
        if needs_change and params["pull"]:
            wanted, unready = wanted_images(specs, resolve)
            images = sorted(set(wanted.values()))
            if unready:
                why = "; ".join("service %s: %s" % item for item in sorted(unready.items()))
                error = "stack %s: %s" % (params["name"], why)
            elif module.check_mode:
                pulled = [image for image in images if engine.image(image) is None]
            else:
                pulled = pull_missing(engine, lambda: Engine(connection, engine.api_version), images,
                                      params["parallelism"], pull_auth(params))
    except (StackError, EngineError, RegistryError) as exc:
        error = "stack %s: %s" % (params["name"], exc)
    if error is not None:
        # A failure after the lock was taken releases it again (not a lock this run already held before).
        released = False
        if not module.check_mode and (outcome.previous is None or outcome.previous.run_id != params["run_id"]):
            try:
                release(params["lock_path"], params["run_id"], force=False, check_mode=False)
                released = True
            except LockError as exc:
                error += "; the deploy lock could not be released: %s" % exc
        module.fail_json(msg=error, lock_released=released)
    locked = True
    if not needs_change and params["release_unchanged"]:
        try:
            release(params["lock_path"], params["run_id"], force=False, check_mode=module.check_mode)
        except LockError as exc:
            module.fail_json(msg="the host needs no change, but its deploy lock could not be released: %s" % exc)
        locked = False
    for service in plan.results.values():
        for warning in service.warnings:
            module.warn(warning)
    for warning in outcome_warnings(outcome):
        module.warn(warning)
    module.exit_json(changed=bool(pulled), needs_change=needs_change, locked=locked,
                     lock=dict(outcome.as_dict(diff=False), path=params["lock_path"]), plan=plan.as_dict(diff=False),
                     running=running, pulled=pulled)


if __name__ == "__main__":
    main()
