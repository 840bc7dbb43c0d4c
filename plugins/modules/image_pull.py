#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_pull
short_description: Pull digest-pinned images a host lacks, several at once, changing nothing else
version_added: 0.1.0
description:
  - Pulls the images of O(images) that the Engine does not have yet, up to O(parallelism) at once, with the same
    machinery M(dockhand.containers.stack) pulls with. Images already present are not pulled again.
  - Run it on every host before a rolling update touches any, so a registry problem stops the update before
    anything changes and the serial phase does not wait for downloads.
  - Every image must be pinned by digest (C(repo@sha256:...)); resolve tags once with
    M(dockhand.containers.image_digest).
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.registry
  - dockhand.containers.connection
options:
  images:
    description: Digest-pinned references, C(repo@sha256:...) or C(repo:tag@sha256:...). Duplicates are pulled once.
    type: list
    elements: str
    required: true
  parallelism:
    description: How many images are pulled at once.
    type: int
    default: 4
attributes:
  check_mode:
    support: full
    details: Reports which images would be pulled; nothing is pulled.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Pull the release's images on every host before the rolling phase
  dockhand.containers.image_pull:
    images:
      - "{{ web_image.pinned }}"
      - registry.example.com/shop/db@sha256:0d5c0a5f0e7bd2b2c5c79a3a8e6de1b2b1b3a0d4c2f8e9a7b6c5d4e3f2a1b0c9
"""

RETURN = r"""
pulled:
  description: Images pulled by this task (in check mode, that would be pulled).
  returned: success
  type: list
  elements: str
present:
  description: Images the Engine already had.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._connection import (
    ConnectionParams, connection_argument_spec,
)
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._image_ref import ImageRefError, parse_image_ref
from ansible_collections.dockhand.containers.plugins.module_utils._registry import (
    REGISTRY_REQUIRED_TOGETHER, pull_auth, registry_argument_spec,
)
from ansible_collections.dockhand.containers.plugins.module_utils._stack import pull_missing


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            images=dict(type="list", elements="str", required=True),
            parallelism=dict(type="int", default=4),
            **registry_argument_spec(),
            **connection_argument_spec(),
        ),
        required_together=REGISTRY_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    params = module.params
    if params["parallelism"] < 1:
        module.fail_json(msg="parallelism must be 1 or more (got %d)" % params["parallelism"])
    images = []
    for text in params["images"]:
        try:
            ref = parse_image_ref(text)
        except ImageRefError as exc:
            module.fail_json(msg="images: %s" % exc)
        if not ref.is_pinned:
            module.fail_json(msg="images: %s has no digest; pull by digest (repo@sha256:...), resolved once with "
                                 "dockhand.containers.image_digest" % text)
        images.append(ref.pinned)
    wanted = sorted(set(images))
    engine = Engine.from_module(module)
    connection = ConnectionParams.from_params(params)
    try:
        present = [image for image in wanted if engine.image(image) is not None]
        if module.check_mode:
            pulled = [image for image in wanted if image not in present]
        else:
            pulled = pull_missing(engine, lambda: Engine(connection, engine.api_version), wanted,
                                  params["parallelism"], pull_auth(params))
    except EngineError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=bool(pulled), pulled=pulled, present=present)


if __name__ == "__main__":
    main()
