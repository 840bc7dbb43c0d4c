#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_digest
short_description: Resolve an image tag to its digest by asking the registry, without pulling
version_added: 0.1.0
description:
  - Asks the registry's HTTP API which digest a tag points to, so a tag can be resolved once (typically on the
    controller with C(run_once) and C(delegate_to=localhost)) and that exact digest deployed on every host.
  - For a multi-platform index, returns the index digest (what to deploy) and the digest of the image for O(platform).
  - A reference that already has a digest is checked to exist in the registry.
  - Sees the registry as a Docker Engine on the same host would, unless told otherwise here, that is the CA and client
    certificate in C(/etc/docker/certs.d/<registry>/), the C(insecure-registries) of C(/etc/docker/daemon.json) and
    loopback registries as insecure (HTTPS without verification, then plain HTTP), and credentials from the docker
    config (C(auths), C(credHelpers), C(credsStore)).
  - Never changes anything.
  - It talks to the registry, not to a Docker Engine. It accepts the Engine connection options only so that
    C(module_defaults) for the C(group/dockhand.containers.docker) action group apply to it cleanly; it ignores all of
    them but O(timeout), which bounds each registry request.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.registry
  - dockhand.containers.connection.WITHOUT_ENGINE
requirements:
  - Nothing but Python on the host that runs it; it needs no Docker SDK and no Docker Engine.
notes:
  - Resolve once per play (C(run_once), C(delegate_to=localhost)) and deploy RV(pinned) everywhere, so every host runs
    the same build even if the tag moves meanwhile. O(dockhand.containers.service#module:pin=true) resolves on each
    host through its Engine instead.
  - Docker Hub references (C(docker.io/...), or a bare name) are asked of its API host, C(registry-1.docker.io).
seealso:
  - module: dockhand.containers.service
    description: Runs the RV(pinned) reference; its O(dockhand.containers.service#module:pin) option resolves a tag on
      each host instead.
  - module: dockhand.containers.stack
    description: Runs several services, each from a pinned reference.
options:
  image:
    description: C(repo), C(repo:tag), C(repo@sha256:...) or C(repo:tag@sha256:...). C(repo) alone means C(repo:latest).
    type: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: Nothing changes, so there is nothing to diff.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Resolve the release tag once, on the controller
  dockhand.containers.image_digest:
    image: registry.example.com/shop/web:2.4
  delegate_to: localhost
  run_once: true
  register: web_image

- name: Deploy exactly that digest everywhere
  dockhand.containers.service:
    name: web
    image: "{{ web_image.pinned }}"
"""

RETURN = r"""
digest:
  description: Digest to deploy (the index digest for a multi-platform image).
  returned: success
  type: str
  sample: sha256:2b3f2c0c8f6b6f6c7d1f0e8f4b4c2a4d5e6f708192a3b4c5d6e7f8091a2b3c4d
pinned:
  description: The full digest-pinned reference, C(repo@sha256:...).
  returned: success
  type: str
  sample: registry.example.com/shop/web@sha256:2b3f2c0c8f6b6f6c7d1f0e8f4b4c2a4d5e6f708192a3b4c5d6e7f8091a2b3c4d
repository:
  description: The repository part of the reference.
  returned: success
  type: str
tag:
  description:
    - The tag that was resolved, or null when a digest was given (for C(repo:tag@sha256:...) the digest wins, as in
      Docker, the tag is not resolved, and a warning says so).
  returned: success
  type: str
media_type:
  description: Media type of the manifest the digest names.
  returned: success
  type: str
is_index:
  description: Whether the digest names a multi-platform index.
  returned: success
  type: bool
platform:
  description: The image for the requested platform, with its own digest.
  returned: success
  type: dict
  contains:
    os:
      description: Operating system.
      returned: success
      type: str
      sample: linux
    architecture:
      description: CPU architecture.
      returned: success
      type: str
      sample: amd64
    variant:
      description: Architecture variant, if any.
      returned: success
      type: str
    digest:
      description: Digest of the platform's image manifest (equal to RV(digest) unless RV(is_index)).
      returned: success
      type: str
error_kind:
  description:
    - On failure, which kind of problem it was; one of V(bad_input), V(unknown_repository), V(unknown_tag),
      V(unknown_digest), V(unreachable), V(tls), V(plain_http), V(auth), V(platform), V(integrity), V(registry).
  returned: failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.dockhand.containers.plugins.module_utils._image_ref import ImageRefError, parse_image_ref
from ansible_collections.dockhand.containers.plugins.module_utils._registry import (
    REGISTRY_REQUIRED_TOGETHER, RegistryError, registry_argument_spec, resolve_reference,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            image=dict(type="str", required=True),
            **registry_argument_spec(),
            **connection_argument_spec(),
        ),
        required_together=REGISTRY_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    params = module.params
    if params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds (got %d)" % params["timeout"],
                         error_kind="bad_input")
    try:
        ref = parse_image_ref(params["image"])
        resolved = resolve_reference(ref, username=params["registry_username"], password=params["registry_password"],
                                     platform=params["platform"], timeout=params["timeout"],
                                     ca_path=params["registry_ca_path"],
                                     validate_certs=params["registry_validate_certs"])
    except ImageRefError as exc:
        module.fail_json(msg="image: %s" % exc, error_kind="bad_input")
    except RegistryError as exc:
        module.fail_json(msg=str(exc), error_kind=exc.kind)
    if ref.tag and ref.digest:
        module.warn("image %s names both tag %s and a digest: the digest wins (as in Docker); the tag was not resolved "
                    "nor checked against it, so tag is returned empty" % (params["image"], ref.tag))
    module.exit_json(changed=False, **resolved.as_dict())


if __name__ == "__main__":
    main()
