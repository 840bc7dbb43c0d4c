#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: service
short_description: Run one container pinned by image digest, with its volumes, logging and restart policy
version_added: 0.1.0
description:
  - Converges one named container on one Docker Engine to a spec, that is a digest-pinned image, named volumes (created
    when missing, never removed), a validated logging driver, a restart policy and a health check.
  - The deployed digest, the previous digest and the spec are kept in labels, so a second run with the same spec
    changes nothing, drift is visible to M(dockhand.containers.service_info), and O(rollback=true) returns to the
    previous deployment without pulling.
  - Everything a replacement needs (image, volumes, networks, the new container itself) is in place before the old
    container is stopped; a replacement that fails to start or to become healthy is undone.
  - A replacement goes through written states (C(docs/swap.md)) with the new container as C(<name>-dockhand-next)
    and the old one parked as C(<name>-dockhand-prev); a run killed at any point is finished (if the new container
    had proven healthy) or undone (the old container back, running if it ran) by the next run, which then fails
    again if the update itself fails. A new service takes its name only once it runs as O(wait) asks.
  - A run that changes the service holds a lock on the Engine, the never-started container C(<name>-dockhand-lock),
    so concurrent runs on one service take turns; a waiting run gives up after O(wait_timeout) + 2 * O(stop_timeout)
    + 15 seconds naming the holder. The lock of a run that died (its process gone, or from another machine after a
    lease) is taken over. A run that changes nothing takes no lock.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.service
  - dockhand.containers.registry
  - dockhand.containers.connection
notes:
  - The module runs where its Docker Engine is reachable, usually on each managed host. With O(pin=true) the Engine
    resolves the tag (its distribution endpoint), so the Engine's C(certs.d), C(insecure-registries) and mirrors apply,
    exactly as for the pull that follows.
  - Pulls and tag resolution use O(registry_username) and O(registry_password) when set, else the docker config of the
    host that runs the module (C(auths), C(credHelpers), C(credsStore)).
seealso:
  - module: dockhand.containers.image_digest
    description: Resolve a tag once on the controller and deploy that digest on every host.
  - module: dockhand.containers.stack
    description: Several services in one task, with the same machinery.
  - module: dockhand.containers.service_info
    description: What runs where, by which digest, and whether it drifted.
attributes:
  check_mode:
    support: full
    details: Predicts exactly what a real run would do, including tag resolution; nothing on the host changes.
  diff_mode:
    support: full
    details:
      - Shows before and after of the fields that differ; O(secret_env) values are masked.
      - C(recreate_reason) says why a change the running container cannot take in place needs a new container.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Run the web service from a digest resolved on the controller
  dockhand.containers.service:
    name: web
    image: registry.example.com/shop/web@sha256:2b3f2c0c8f6b6f6c7d1f0e8f4b4c2a4d5e6f708192a3b4c5d6e7f8091a2b3c4d
    ports: ["8080:8080"]
    volumes:
      - web-data:/data
    secret_env:
      DATABASE_PASSWORD: "{{ vault_db_password }}"
    restart_policy: on-failure
    restart_retries: 3
    log_driver: json-file
    log_options:
      max-size: 20m
      max-file: "5"
    healthcheck:
      test: wget -q -O /dev/null http://127.0.0.1:8080/health
      interval: 5s
    update_strategy: stop-first

- name: Go back to the previous digest and settings
  dockhand.containers.service:
    name: web
    rollback: true
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done) - V(create), V(recreate), V(update), V(start), V(stop), V(remove).
  returned: always
  type: list
  elements: str
  sample: [recreate]
image:
  description: The digest-pinned reference the container runs.
  returned: when the service is not absent
  type: str
digest:
  description: The digest the container runs.
  returned: when the service is not absent
  type: str
previous_image:
  description: The digest-pinned reference deployed before this one, for rollback.
  returned: when known
  type: str
container_id:
  description: ID of the container.
  returned: when the container exists
  type: str
state:
  description: V(started), V(stopped) or V(absent) after the run.
  returned: always
  type: str
health:
  description: Health status reported by the Engine, if the container has a health check.
  returned: always
  type: str
ports:
  description: The host ports the container publishes, including those the Engine picked; empty while it is stopped.
  returned: always
  type: list
  elements: dict
  contains:
    target:
      description: Port inside the container.
      type: int
    protocol:
      description: V(tcp), V(udp) or V(sctp).
      type: str
    host_ip:
      description: Host address it is bound to.
      type: str
    published:
      description: Host port.
      type: int
  sample: [{target: 8080, protocol: tcp, host_ip: 0.0.0.0, published: 49153}]
changed_fields:
  description: Names of the fields that differed from the running container.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.dockhand.containers.plugins.module_utils._converge import ConvergeError, converge_service
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._registry import (
    REGISTRY_REQUIRED_TOGETHER, RegistryError, pull_auth, registry_argument_spec, tag_resolver,
)
from ansible_collections.dockhand.containers.plugins.module_utils._service_spec import (
    ServiceSpec, SpecError, service_options,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(service_options(), **registry_argument_spec(), **connection_argument_spec()),
        required_together=REGISTRY_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    try:
        spec = ServiceSpec.from_params(module.params)
    except SpecError as exc:
        module.fail_json(msg=str(exc))
    engine = Engine.from_module(module)
    try:
        result = converge_service(engine, spec, resolve=tag_resolver(engine, module.params), check_mode=module.check_mode,
                                  registry_auth=pull_auth(module.params))
    except (ConvergeError, EngineError, RegistryError) as exc:
        module.fail_json(msg="service %s: %s" % (spec.name, exc))
    for warning in result.warnings:
        module.warn(warning)
    module.exit_json(**result.as_dict(diff=module._diff))


if __name__ == "__main__":
    main()
