#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_run
short_description: Record a deploy run in the controller's journal and list the recorded runs that have ended
version_added: 0.1.0
description:
  - Run it on the controller, delegated to C(localhost) with C(run_once). It records this run in a journal
    directory there, with its ansible-playbook process (pid and start time), the controller's hostname and boot id,
    the holder and since when.
  - Returns the runs of the journal that have certainly ended (their ansible-playbook process is gone, or the
    controller restarted since), so a deploy lock one of them left on a host can be taken over
    (M(dockhand.containers.deploy_lock) O(dockhand.containers.deploy_lock#module:take_over)) instead of blocking
    every later deploy. A run recorded by another controller is never judged.
  - With O(lost), records the hosts this run left unfinished and why (for example lost mid-roll, left drained in
    the load balancer); a later run that takes such a host over reports it.
  - Records of ended runs older than O(keep_days) are removed.
  - It changes no Docker object, so it is not part of the C(dockhand.containers.docker) action group.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  journal:
    description: The journal directory on the controller (of the user running the task); created when missing.
    type: path
    default: ~/.local/state/dockhand/runs
  run_id:
    description: This run's identifier, the same as its deploy locks'. Letters, digits, C(.), C(_) and C(-).
    type: str
    required: true
  holder:
    description: Who runs it, as the deploy lock shows it.
    type: str
    default: unknown
  lost:
    description: Hosts this run leaves unfinished, each with why; merged into this run's record.
    type: dict
  keep_days:
    description: Records of ended runs older than this many days are removed.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    details: Lists the ended runs; writes and removes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Record this run and find the runs that have ended
  dockhand.containers.deploy_run:
    run_id: "{{ run_id }}"
    holder: alice@ctl1
  delegate_to: localhost
  run_once: true
  register: journal

- name: Take the deploy lock, taking over one an ended run left
  dockhand.containers.deploy_lock:
    run_id: "{{ run_id }}"
    holder: alice@ctl1
    take_over: "{{ journal.ended | list }}"
"""

RETURN = r"""
record:
  description: This run's record.
  returned: always
  type: dict
  sample: {run_id: 20261130T021500Z-4821, holder: alice@ctl1, since: "2026-11-30T02:15:00Z", controller: ctl1,
           boot_id: 6a1f..., pid: 4242, pid_start: "81234", lost: {}}
ended:
  description: Run id -> C(holder), C(since), C(why) it certainly ended, and C(lost) (the hosts it left unfinished).
  returned: always
  type: dict
  sample: {20261130T011000Z-77: {holder: bob@ctl1, since: "2026-11-30T01:10:00Z",
                                 why: "its ansible-playbook process (pid 3100 on ctl1) is gone",
                                 lost: {web2: "lost mid-roll (unreachable); left drained in haproxy"}}}
pruned:
  description: Run ids whose records were removed (ended, older than O(keep_days)).
  returned: always
  type: list
  elements: str
journal:
  description: The journal directory.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._deploy_lock import (
    LockError, journal_argument_spec, record_and_list,
)


def main() -> None:
    module = AnsibleModule(argument_spec=journal_argument_spec(), supports_check_mode=True)
    try:
        result = record_and_list(module.params, module.check_mode)
    except LockError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
