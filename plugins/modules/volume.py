#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: Create or remove a named Docker volume, never losing its data by accident
version_added: 0.2.0
description:
  - Creates a named volume with the C(local) driver (plain, a bind of a host directory, tmpfs, nfs, cifs) or any
    volume plugin installed on the Docker host, and removes it again.
  - The Engine fixes a volume's driver, options and labels when it creates it and cannot change them. A volume that
    exists with other settings is refused with what differs, unless O(recreate=migrate).
  - Removal is refused while any container, running or stopped, uses the volume (the message names them), and when
    the volume holds data unless O(force=true). Where the data is a directory the module can read (a local volume on
    an Engine reached over its unix socket) it looks there; for other drivers it looks through a helper container
    that is created from an image already on the host and never started.
  - Invalid input fails before anything changes, naming the option and the fix.
  - See the volumes guide (C(docs/volumes.md)) for the kinds of volumes and the safety rules.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.connection
options:
  name:
    description: Volume name (letters, digits, C(_), C(.), C(-); at least 2 characters).
    type: str
    required: true
  state:
    description:
      - V(present) creates the volume if it is missing. V(absent) removes it (see O(force)).
    type: str
    default: present
    choices: [present, absent]
  driver:
    description:
      - Volume driver. V(local) or the name of a volume plugin installed on the Docker host.
      - An unknown driver fails with the list of drivers the Engine has (the Engine looks for a plugin for about 15
        seconds first).
      - V(local) when the volume is created and this is not set. Settings that are not set (O(driver),
        O(driver_options), O(labels)) are not compared with an existing volume, so a task that only names a volume
        accepts it as it is.
    type: str
  driver_options:
    description:
      - Options passed to the driver at creation.
      - For V(local), the keys C(type), C(o), C(device) and C(size) are checked here, because the Engine only mounts
        (and so only complains) when a container first uses the volume.
      - 'A host directory: C({type: none, o: bind, device: /srv/data}).'
      - 'tmpfs: C({type: tmpfs, device: tmpfs, o: size=64m}).'
      - 'NFS: C({type: nfs, o: "addr=10.0.0.5,nfsvers=4", device: ":/export/data"}).'
      - 'CIFS: C({type: cifs, device: //host/share, o: "username=u,password=p"}).'
      - For a plugin driver they are passed through unchanged.
      - Values are sent as strings (V(true) becomes C("true")).
    type: dict
  labels:
    description: Labels of the volume.
    type: dict
  force:
    description:
      - With O(state=absent), delete the volume even if it holds data (or if whether it does cannot be seen).
      - Never removes a volume that a container uses.
    type: bool
    default: false
  recreate:
    description:
      - What to do when the volume exists with another driver, other options or other labels.
      - V(never) fails and changes nothing.
      - V(migrate) first tries the new settings on a throw-away volume, then backs the data up into O(backup_dir),
        removes the volume, creates it with the new settings, restores the data, verifies it (file count and every
        file's content checksum), and only then deletes the backup. On any failure the backup is kept and its path is
        in the error. The volume must not be used by any container.
    type: str
    default: never
    choices: [never, migrate]
  backup_dir:
    description:
      - Directory (on the side of the Docker host, created 0700 if missing) for the backup that O(recreate=migrate)
        takes. Required with O(recreate=migrate).
    type: path
  helper_image:
    description:
      - Image (already on the Docker host) for the helper container that looks into a volume whose data this host
        cannot read directly. Defaults to the smallest image on the host. The container is created, never started.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows the volume's name, driver, driver options and labels before and after.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Create the database's volume
  dockhand.containers.volume:
    name: pgdata
    labels:
      backup: nightly

- name: Keep uploads in a host directory
  dockhand.containers.volume:
    name: uploads
    driver_options:
      type: none
      o: bind
      device: /srv/uploads

- name: A volume of a plugin driver, options passed through
  dockhand.containers.volume:
    name: shared-cache
    driver: rexray/ebs
    driver_options:
      size: "20"

- name: Change the options of a volume that holds data (backup, recreate, restore, verify)
  dockhand.containers.volume:
    name: uploads
    driver_options:
      type: none
      o: bind
      device: /srv/uploads-new
    recreate: migrate
    backup_dir: /var/backups/dockhand

- name: Remove a volume and the data in it
  dockhand.containers.volume:
    name: scratch
    state: absent
    force: true
"""

RETURN = r"""
actions:
  description: What was done (or, in check mode, would be done), C(create), C(remove) or C(migrate); empty when nothing.
  returned: always
  type: list
  elements: str
migrated:
  description: What O(recreate=migrate) moved and verified.
  returned: when the volume was migrated
  type: dict
  contains:
    files:
      description: Entries (files, directories, links) restored and verified.
      type: int
    bytes:
      description: Bytes in regular files.
      type: int
    content_sha256:
      description: Checksum over every entry's path and content, equal in the backup and the new volume.
      type: str
    data_path:
      description: C(fast) (read on the host) or C(engine) (through a helper container).
      type: str
    backup_deleted:
      description: The backup archive, deleted after the verification.
      type: str
volume:
  description: The volume as the Engine reports it afterwards; null after removal.
  returned: always
  type: dict
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
      description: Where the Engine keeps the data on its host (for a plugin, what the plugin reports).
      type: str
    scope:
      description: C(local) or C(global), as the driver says.
      type: str
    created_at:
      description: When the volume was created.
      type: str
    data_on_host:
      description: Whether the data is a directory this module reads directly (then O(force) and sizes need no helper).
      type: bool
    data_path:
      description:
        - The directory holding the data where the module ran (for M(dockhand.containers.volume_transfer)); null
          when the data is reachable only through a container.
      type: str
    bytes:
      description: Bytes in regular files; null when the data is not readable on the host.
      type: int
    files:
      description: Number of files, links and other non-directory entries; null when not readable on the host.
      type: int
    users:
      description: Containers (running or stopped) that use the volume, with C(name), C(id) and C(running).
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._migrate import migrator
from ansible_collections.dockhand.containers.plugins.module_utils._volume import (
    VolumeError, VolumeSpec, converge_volume, volume_argument_spec,
)


def main() -> None:
    module = AnsibleModule(argument_spec=dict(volume_argument_spec(), **connection_argument_spec()),
                           required_if=[("recreate", "migrate", ["backup_dir"])], supports_check_mode=True)
    params = module.params
    try:
        spec = VolumeSpec.from_params(params)
    except VolumeError as exc:
        module.fail_json(msg=str(exc))
    engine = Engine.from_module(module)
    try:
        result = converge_volume(engine, spec, state=params["state"], force=params["force"],
                                 recreate=params["recreate"], helper_image=params["helper_image"],
                                 check_mode=module.check_mode,
                                 migrate=migrator(params["backup_dir"], params["helper_image"]))
    except (VolumeError, EngineError) as exc:
        module.fail_json(msg=str(exc) if str(exc).startswith("volume ") else "volume %s: %s" % (spec.name, exc))
    for warning in result.warnings:
        module.warn(warning)
    module.exit_json(**result.as_dict(diff=module._diff))


if __name__ == "__main__":
    main()
