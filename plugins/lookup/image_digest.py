# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: image_digest
short_description: Resolve image tags to digest-pinned references on the controller, without pulling
version_added: 0.1.0
description:
  - Asks the registry, from the controller, which digest each image's tag names now, exactly as the
    M(dockhand.containers.image_digest) module does (same registry options, same trust and credential sources), but
    inside the controller's Ansible process, so no module is started (a second or more saved per play).
  - Returns one C(repo@sha256:...) reference per term, in the order given. A reference that already names a digest is
    returned pinned to that digest without asking the registry for its tag.
  - Use the module instead when the lookup must run on another host (delegated), since a lookup always runs on the
    controller.
author: dockhand.containers maintainers (@dockhand)
options:
  _terms:
    description: Images as C(repo), C(repo:tag), C(repo@sha256:...) or C(repo:tag@sha256:...).
    type: list
    elements: str
    required: true
  registry_username:
    description: User for the registry; not set, the controller's docker config is used as C(docker pull) would.
    type: str
  registry_password:
    description: Password or token for O(registry_username).
    type: str
  platform:
    description: Platform a tag is resolved for, as C(os/architecture[/variant]); default the controller's.
    type: str
  registry_ca_path:
    description: CA certificate to verify the registry with, instead of C(/etc/docker/certs.d/<registry>/ca.crt).
    type: path
  registry_validate_certs:
    description:
      - Verify the registry's TLS certificate; V(false) is HTTPS without verification, then plain HTTP.
      - Loopback registries and those in the controller's C(/etc/docker/daemon.json) C(insecure-registries) are treated
        that way whatever this says, as the Docker Engine does.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for one answer of the registry.
    type: int
    default: 60
"""

EXAMPLES = r"""
- name: Resolve the images once, on the controller
  ansible.builtin.set_fact:
    app_images: "{{ dict(images | zip(query('dockhand.containers.image_digest', *images))) }}"
  vars:
    images: [registry.example.com/shop/web:v2, registry.example.com/shop/api:v2]
  run_once: true
"""

RETURN = r"""
_raw:
  description: One digest-pinned reference (C(repo@sha256:...)) per term, in the order of the terms.
  type: list
  elements: str
"""

from typing import Any, Optional

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.dockhand.containers.plugins.module_utils._image_ref import ImageRefError, parse_image_ref
from ansible_collections.dockhand.containers.plugins.module_utils._registry import RegistryError, resolve_reference


class LookupModule(LookupBase):

    def run(self, terms: list[Any], variables: Optional[dict[str, Any]] = None, **kwargs: Any) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        username = self.get_option("registry_username") or None
        password = self.get_option("registry_password") or None
        if bool(username) != bool(password):
            raise AnsibleLookupError("registry_username and registry_password go together: set both or neither")
        timeout = self.get_option("timeout")
        if timeout <= 0:
            raise AnsibleLookupError("timeout must be a positive number of seconds (got %d)" % timeout)
        pinned = []
        for term in terms:
            try:
                ref = parse_image_ref(str(term))
                resolved = resolve_reference(ref, username=username, password=password,
                                             platform=self.get_option("platform"), timeout=timeout,
                                             ca_path=self.get_option("registry_ca_path"),
                                             validate_certs=self.get_option("registry_validate_certs"))
            except ImageRefError as exc:
                raise AnsibleLookupError("image %s: %s" % (term, exc))
            except RegistryError as exc:
                raise AnsibleLookupError(str(exc))
            pinned.append(str(resolved.as_dict()["pinned"]))
        return pinned
