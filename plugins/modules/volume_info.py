#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_info
short_description: Report a Docker host's volumes with driver, options, labels, size and the containers using them
version_added: 0.2.0
description:
  - Lists the volumes of one Engine (all of them, the ones named, or those matching labels or a driver) with their
    driver, options, labels, mount point, the containers that use them (running or stopped), where the data is a
    directory this host reads directly their size in bytes and file count, and optionally their newest backup.
  - Never changes anything.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.connection
options:
  name:
    description: Only these volumes. Names that do not exist are returned in RV(missing).
    type: list
    elements: str
    default: []
  labels:
    description: Only volumes with all these labels, each V(key) or V(key=value).
    type: list
    elements: str
    default: []
  driver:
    description: Only volumes of this driver.
    type: str
  backup_dir:
    description:
      - A directory of archives written by M(dockhand.containers.volume_backup), on the machine the module runs on.
      - Each volume then gets RV(volumes[].backup), its newest archive there.
    type: path
  stats:
    description:
      - Count the bytes and files of each volume whose data is readable on this host (a walk of its directory).
      - Set to V(false) for a quick listing of big volumes.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
    details: Read only.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Every volume of the host
  dockhand.containers.volume_info:
  register: host_volumes

- name: Volumes that nothing uses any more
  ansible.builtin.debug:
    msg: "{{ host_volumes.volumes | selectattr('users', 'equalto', []) | map(attribute='name') }}"

- name: The volumes marked for nightly backups, with their newest archive
  dockhand.containers.volume_info:
    labels:
      - backup=nightly
    stats: false
    backup_dir: /var/backups/dockhand
  register: nightly

- name: Fail when a volume has no archive yet
  ansible.builtin.assert:
    that: nightly.volumes | selectattr('backup', 'none') | list | length == 0
"""

RETURN = r"""
volumes:
  description: The volumes found, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Volume name.
      type: str
    driver:
      description: Volume driver.
      type: str
    driver_options:
      description: Options the volume was created with.
      type: dict
    labels:
      description: Labels of the volume.
      type: dict
    mountpoint:
      description: Where the Engine keeps the data on its host.
      type: str
    scope:
      description: C(local) or C(global).
      type: str
    created_at:
      description: When the volume was created.
      type: str
    data_on_host:
      description: Whether the data is a directory this module reads directly.
      type: bool
    data_path:
      description:
        - The directory holding the data where the module ran (for M(dockhand.containers.volume_transfer)); null
          when the data is reachable only through a container.
      type: str
    bytes:
      description: Bytes in regular files; null when not readable on this host or O(stats=false).
      type: int
    files:
      description: Number of non-directory entries; null when not readable on this host or O(stats=false).
      type: int
    users:
      description: Containers (running or stopped) that use the volume, with C(name), C(id) and C(running).
      type: list
      elements: dict
    backup:
      description:
        - The volume's newest archive in O(backup_dir) (C(path), C(archived_at), C(sha256), C(archive_bytes),
          C(files), C(bytes)); null when it has none there.
      returned: when O(backup_dir) is set
      type: dict
missing:
  description: Names given in O(name) that the Engine has no volume for.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._archive import ArchiveError
from ansible_collections.dockhand.containers.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._volume import (
    list_volumes, volume_info_argument_spec,
)


def main() -> None:
    module = AnsibleModule(argument_spec=dict(volume_info_argument_spec(), **connection_argument_spec()),
                           supports_check_mode=True)
    params = module.params
    engine = Engine.from_module(module)
    try:
        volumes, missing = list_volumes(engine, params["name"], params["labels"], params["driver"], params["stats"],
                                        params["backup_dir"])
    except (ArchiveError, EngineError, OSError) as exc:
        module.fail_json(msg="volume_info: %s" % exc)
    module.exit_json(changed=False, volumes=volumes, missing=missing)


if __name__ == "__main__":
    main()
