# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Registry options of every module that resolves or pulls (argument spec: _registry.registry_argument_spec).
    DOCUMENTATION = r"""
options:
  registry_username:
    description:
      - User for the registry. Needs O(registry_password).
      - When not set, the docker config of the host that runs the module is used, as C(docker pull) would use it,
        that is E(DOCKER_CONFIG) or C(~/.docker/config.json) with its C(auths), C(credHelpers) and C(credsStore).
    type: str
  registry_password:
    description: Password or token for O(registry_username).
    type: str
  platform:
    description:
      - Platform a tag is resolved for, as C(os/architecture[/variant]); a tag without an image for it is an error.
      - Defaults to the platform of the host that runs M(dockhand.containers.image_digest), and to the Docker Engine's
        platform for modules that pull. Modules that pull only digest-pinned images do not use it.
    type: str
  registry_ca_path:
    description:
      - CA certificate to verify the registry with, instead of C(/etc/docker/certs.d/<registry>/ca.crt).
      - Used where the module talks to the registry itself, that is by M(dockhand.containers.image_digest).
        M(dockhand.containers.service) and M(dockhand.containers.stack) resolve and pull through the Docker Engine,
        which trusts what the Engine's host trusts (C(certs.d) there, its C(insecure-registries)); they accept this
        option so that the same registry settings can be given to every module that resolves or pulls.
    type: path
  registry_validate_certs:
    description:
      - Verify the registry's TLS certificate. V(false) treats the registry as Docker treats an entry of
        C(insecure-registries), that is HTTPS without verification, then plain HTTP.
      - Registries on a loopback address, and those in the C(insecure-registries) of C(/etc/docker/daemon.json) on the
        host that runs the module, are treated that way whatever this says, as the Docker Engine does.
      - Used where the module talks to the registry itself, like O(registry_ca_path).
    type: bool
    default: true
"""
