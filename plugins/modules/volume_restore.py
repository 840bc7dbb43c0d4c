#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_restore
short_description: Restore a Docker volume from an archive made by volume_backup, verified before and after
version_added: 0.1.0
description:
  - Reads the archive O(path) and its manifest (C(<path>.json)) and, before anything the volume's users can see is
    written, checks the archive's sha256 against the manifest, the manifest's file count and listing against the
    archive, and every entry against the safety rule. An entry with C(..) or an absolute name, a symlink pointing
    outside the volume, an entry reached through a symlink, a hard link to anything but an earlier file of the
    archive, a device node or a FIFO makes the module fail naming that entry, with nothing written.
  - A plain local volume (no driver options) is restored in one pass over the archive, extracted into a staging
    directory in the Engine's own directory of the volume (never mounted into containers) while it is checked, and
    moved into place by renames only once all of it checked out; on a failure the staging directory is removed, the
    volume keeps its content, and a volume the module created is removed again. Any other volume has the whole archive
    checked first and then written.
  - Creates the volume when it does not exist, with the manifest's driver, options and labels unless O(driver),
    O(driver_options) or O(labels) say otherwise. An existing volume is used as it is.
  - A volume that already holds exactly the archive's listing (paths, types, modes, owners, sizes, mtimes, link
    targets) is left alone and the module reports C(ok). A volume holding anything else is refused unless
    O(force=true); then its content is removed and replaced by the archive's.
  - Content, modes, numeric owners, timestamps, symlinks, hard links and empty directories are restored; afterwards
    the volume's listing is compared with the archive's.
  - The data path (C(fast) or C(engine)) is chosen like M(dockhand.containers.volume_backup)'s. On the C(engine) path
    O(force) empties the volume with C(/bin/sh) in a helper container, so O(helper_image) must have a shell.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.connection
options:
  path:
    description: The archive file on the Docker host; its manifest is C(<path>.json).
    type: path
    required: true
  volume:
    description: The volume to restore into. Default is the volume named in the manifest.
    type: str
  driver:
    description: Driver for a volume that does not exist yet. Default is the manifest's.
    type: str
  driver_options:
    description: Driver options for a volume that does not exist yet. Default is the manifest's.
    type: dict
  labels:
    description: Labels for a volume that does not exist yet. Default is the manifest's.
    type: dict
  force:
    description: Replace the content of a volume that holds data other than the archive's.
    type: bool
    default: false
  stop_containers:
    description:
      - Stop the running containers that use the volume during the restore and start them again afterwards, also
        when the restore fails.
    type: bool
    default: false
  stop_timeout:
    description: Seconds each container gets to stop before it is killed.
    type: int
    default: 10
  command_container:
    description: The running container in which O(pre_command) and O(post_command) run.
    type: str
  pre_command:
    description: Shell command run in O(command_container) before the restore; a non-zero exit stops it.
    type: str
  post_command:
    description: Shell command run in O(command_container) after the restore, also when it failed.
    type: str
  helper_image:
    description:
      - Image for the helper container of the C(engine) data path; it must be on the Docker host (nothing is pulled).
        Default is the smallest image on the host.
    type: str
attributes:
  check_mode:
    support: full
    details: Verifies the archive and reports whether the volume would be created, emptied, and which containers would
      be stopped; nothing on the host changes.
  diff_mode:
    support: full
    details: Shows the volume's entry count and listing digest before and after.
  platform:
    platforms: posix
seealso:
  - module: dockhand.containers.volume_backup
"""

EXAMPLES = r"""
- name: Restore the newest archive of shop-db into a fresh volume on another host
  dockhand.containers.volume_restore:
    path: /var/backups/volumes/shop-db-20261129T230000.123456Z.tar.zst

- name: Put yesterday's data back into the live volume, with its users stopped meanwhile
  dockhand.containers.volume_restore:
    path: "{{ backup.path }}"
    volume: shop-db
    force: true
    stop_containers: true
"""

RETURN = r"""
volume:
  description: The volume restored into.
  returned: always
  type: str
path:
  description: The archive read.
  returned: always
  type: str
sha256:
  description: The archive's verified sha256.
  returned: always
  type: str
files:
  description: Entries in the archive (not counting the volume's root).
  returned: always
  type: int
bytes:
  description: Sum of the archive's regular file sizes.
  returned: always
  type: int
created:
  description: Whether the volume was (or in check mode would be) created.
  returned: always
  type: bool
cleared:
  description: Whether the volume's previous content was (or would be) removed because of O(force).
  returned: always
  type: bool
data_path:
  description: C(fast) (written on the host) or C(engine) (written through a helper container); null in check mode for
    a volume that does not exist yet.
  returned: always
  type: str
stopped:
  description: Containers stopped during the restore (and started again); in check mode, those that would be.
  returned: always
  type: list
  elements: str
duration:
  description: Seconds the restore took.
  returned: when something was restored
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._archive import ArchiveError
from ansible_collections.dockhand.containers.plugins.module_utils._backup import (
    BackupError, Consistency, RestoreRequest, consistency_argument_spec, restore_volume,
)
from ansible_collections.dockhand.containers.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._volume import VolumeError


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            volume=dict(type="str"),
            driver=dict(type="str"),
            driver_options=dict(type="dict"),
            labels=dict(type="dict"),
            force=dict(type="bool", default=False),
            **consistency_argument_spec(),
            **connection_argument_spec(),
        ),
        supports_check_mode=True,
    )
    p = module.params
    request = RestoreRequest(
        path=p["path"], volume=p["volume"], driver=p["driver"], driver_options=p["driver_options"],
        labels=p["labels"], force=p["force"], helper_image=p["helper_image"], consistency=Consistency.from_params(p))
    problems = request.problems()
    if problems:
        module.fail_json(msg="; ".join(problems))
    engine = Engine.from_module(module)
    try:
        outcome = restore_volume(engine, request, check_mode=module.check_mode)
    except (ArchiveError, BackupError, EngineError, VolumeError) as exc:
        module.fail_json(msg=str(exc))
    result = dict(outcome.result, changed=outcome.changed)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
