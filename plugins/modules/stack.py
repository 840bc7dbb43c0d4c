#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stack
short_description: Converge all of a host's services, volumes and networks in one task
version_added: 0.1.0
description:
  - Converges a list of services on one Docker Engine with exactly the machinery of M(dockhand.containers.service),
    after pulling the missing images in parallel.
  - Services are converged in waves that follow C(depends_on), that is a service starts only after everything it
    depends on has converged (and, with O(services[].wait), become healthy); the services of one wave converge side by
    side, up to O(parallelism) at once.
  - Every service is validated before anything changes; a bad item fails the task with the host untouched.
  - Each service that changes is replaced under its own lock on the Engine, exactly as M(dockhand.containers.service)
    does (see C(docs/swap.md)), so two runs on the same host take turns per service.
  - With O(prune=true), containers of this stack that are no longer declared are removed. Their named volumes are kept.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.stack_services
  - dockhand.containers.registry
  - dockhand.containers.connection
notes:
  - Tags of services with C(pin=true) are resolved by the Docker Engine, once per tag and run, as in
    M(dockhand.containers.service).
seealso:
  - module: dockhand.containers.service
    description: One service; every item of O(services) takes its options.
  - module: dockhand.containers.image_digest
    description: Resolve tags once on the controller.
  - module: dockhand.containers.service_info
    description: What runs where, by which digest, and whether it drifted.
options:
  name:
    description: Name of the stack, kept in the C(dockhand.stack) label of its containers; must not be empty.
    type: str
    required: true
  prune:
    description: Remove containers labelled with this stack that O(services) no longer declares (never their volumes).
    type: bool
    default: false
  parallelism:
    description:
      - How many images are pulled, and how many services of one dependency wave are converged, at once.
      - V(1) converges one service after another in declared order.
    type: int
    default: 4
attributes:
  check_mode:
    support: full
    details: Predicts each service's actions and the pruning; nothing is pulled or changed.
  diff_mode:
    support: full
    details: Before and after per service, of the fields that differ; secrets masked.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Converge the shop stack on each host
  dockhand.containers.stack:
    name: shop
    prune: true
    services:
      - name: db
        image: registry.example.com/shop/db@sha256:0d5c0a5f0e7bd2b2c5c79a3a8e6de1b2b1b3a0d4c2f8e9a7b6c5d4e3f2a1b0c9
        volumes: ["db-data:/var/lib/db"]
        networks: [shop]
      - name: web
        image: "{{ web_image.pinned }}"
        depends_on: [db]
        ports: ["8080:8080"]
        networks: [shop]
"""

RETURN = r"""
services:
  description:
    - Every declared service's outcome, also when the task fails, keyed by name.
    - C(outcome) is V(converged) (with the same keys as M(dockhand.containers.service) returns), V(failed) (with
      C(msg) saying why, e.g. its image could not be pulled) or V(not attempted) (with C(msg) saying why not, since
      the stack stops after the dependency wave in which a service failed).
    - Images are pulled before any service is touched; a service whose image cannot be resolved or pulled fails
      without being touched, and every image that could not be had is named.
  returned: always
  type: dict
  sample:
    web: {outcome: converged, actions: [recreate], image: "registry.example.com/shop/web@sha256:...", state: started}
    api: {outcome: failed, msg: "its image could not be pulled: ..."}
    worker: {outcome: not attempted, msg: "not attempted: the stack stopped after api failed"}
order:
  description: Names of the services in the order they were converged.
  returned: always
  type: list
  elements: str
pruned:
  description: Services removed because the stack no longer declares them.
  returned: always
  type: list
  elements: str
pulled:
  description: Images pulled in this run.
  returned: always
  type: list
  elements: str
summary:
  description: How many services were created, recreated, updated in place, started, stopped, removed or left unchanged.
  returned: always
  type: dict
  sample: {create: 0, recreate: 1, update: 0, start: 0, stop: 0, remove: 0, unchanged: 19}
  contains:
    create:
      description: Services created.
      type: int
    recreate:
      description: Services replaced by a new container.
      type: int
    update:
      description: Services updated in place.
      type: int
    start:
      description: Services started.
      type: int
    stop:
      description: Services stopped.
      type: int
    remove:
      description: Services removed, including pruned ones.
      type: int
    unchanged:
      description: Services left as they were.
      type: int
"""

from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine
from ansible_collections.dockhand.containers.plugins.module_utils._stack_module import converge, stack_module


def main() -> None:
    module, specs = stack_module()
    result = converge(module, Engine.from_module(module), specs, check_mode=module.check_mode)
    module.exit_json(**result.as_dict(diff=module._diff))


if __name__ == "__main__":
    main()
