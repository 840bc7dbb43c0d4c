#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_backup
short_description: Archive a Docker volume to a file on its host, with a checksummed manifest
version_added: 0.1.0
description:
  - Writes the volume's files (content, modes, numeric owners, timestamps, symlinks, hard links, empty directories)
    as a tar archive, compressed with zstd (default), gzip or not at all, into O(dest) on the Docker host, and a JSON
    manifest beside it (C(<archive>.json)) with the volume's name, driver, options, labels, the byte and file counts
    and the archive's sha256. M(dockhand.containers.volume_restore) reads both.
  - The data path is chosen per volume and returned as RV(data_path). C(fast) when the volume's data is a directory
    this host can read (the C(local) driver, also C(type=none) bind volumes); GNU tar streams it straight into the
    archive. C(engine) for every other volume (plugins, tmpfs, nfs, an Engine on another machine); a helper container
    mounts the volume, is never started, and the Engine's archive API reads the data through it.
  - The archive is written as C(<archive>.partial) (mode 0600) and renamed only when complete, so a failed or
    interrupted backup leaves no archive behind. A missing O(dest) is created with mode 0700.
  - Before copying, every entry is checked with the rule restore applies (no device nodes or FIFOs, no symlink
    pointing outside the volume), so a backup is never taken that its restore would refuse.
  - Every run makes a new archive, so the module always reports C(changed).
  - zstd uses the host's C(libzstd) (Debian/Ubuntu package C(libzstd1), which apt itself needs; RHEL/Fedora C(libzstd));
    no Python package is needed. When the host also has the C(zstd) command, the fast path pipes tar through it
    (faster). The fast path needs GNU tar.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - dockhand.containers.connection
options:
  volume:
    description: The volume to back up.
    type: str
    required: true
  dest:
    description: Directory on the Docker host (where the module runs) for the archive and its manifest.
    type: path
    required: true
  compression:
    description: How the tar stream is compressed.
    type: str
    choices: [zstd, gzip, none]
    default: zstd
  compression_level:
    description: zstd 1-19 (default 3) or gzip 1-9 (default 6).
    type: int
  keep:
    description:
      - Keep only the newest O(keep) archives of this volume in O(dest), deleting older ones (archive and manifest)
        after the new archive has been read back and its sha256 matched. Archives of other volumes and files
        without a valid manifest are never deleted.
    type: int
  stop_containers:
    description:
      - Stop the running containers that use the volume for the copy and start them again afterwards, also when the
        copy fails.
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
    description: Shell command run in O(command_container) before the copy (a database dump or flush); a non-zero exit
      stops the backup.
    type: str
  post_command:
    description: Shell command run in O(command_container) after the copy, also when the copy failed.
    type: str
  helper_image:
    description:
      - Image for the helper container of the C(engine) data path. It must already be on the Docker host (nothing is
        pulled); it never runs. Default is the smallest image on the host.
    type: str
attributes:
  check_mode:
    support: full
    details: Reports the archive path, the data path and the containers that would be stopped; nothing is written.
  diff_mode:
    support: full
    details: Shows the volume's archives in O(dest) before and after.
  platform:
    platforms: posix
seealso:
  - module: dockhand.containers.volume_restore
"""

EXAMPLES = r"""
- name: Back up the database volume with the database stopped, keeping the last 7 archives
  dockhand.containers.volume_backup:
    volume: shop-db
    dest: /var/backups/volumes
    stop_containers: true
    keep: 7
  register: backup

- name: Back up a live volume around a flush inside the app's container
  dockhand.containers.volume_backup:
    volume: web-data
    dest: /var/backups/volumes
    compression: gzip
    command_container: web
    pre_command: sync
    post_command: "echo backup done >> /data/backup.log"
"""

RETURN = r"""
volume:
  description: The volume archived.
  returned: always
  type: str
path:
  description: The archive file.
  returned: always
  type: str
  sample: /var/backups/volumes/shop-db-20261129T230000.123456Z.tar.zst
manifest:
  description: The manifest file beside the archive.
  returned: always
  type: str
data_path:
  description: C(fast) (read on the host) or C(engine) (read through a helper container).
  returned: always
  type: str
compression:
  description: The compression used.
  returned: always
  type: str
sha256:
  description: sha256 of the archive file.
  returned: success
  type: str
archive_bytes:
  description: Size of the archive file.
  returned: success
  type: int
files:
  description: Entries archived (files, directories, links; not the volume's root).
  returned: success, and in check mode on the fast path
  type: int
bytes:
  description: Sum of the regular files' sizes (a hard-linked file counts once per name).
  returned: success, and in check mode on the fast path
  type: int
duration:
  description: Seconds the copy took, containers' stop and start included.
  returned: success
  type: float
stopped:
  description: Containers stopped for the copy (and started again); in check mode, those that would be.
  returned: always
  type: list
  elements: str
pruned:
  description: Older archives deleted because of O(keep).
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._backup import (
    BackupError, BackupRequest, Consistency, archives_diff, backup_volume, consistency_argument_spec,
)
from ansible_collections.dockhand.containers.plugins.module_utils._connection import connection_argument_spec
from ansible_collections.dockhand.containers.plugins.module_utils._engine import Engine, EngineError
from ansible_collections.dockhand.containers.plugins.module_utils._volume import VolumeError


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            volume=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            compression=dict(type="str", choices=["zstd", "gzip", "none"], default="zstd"),
            compression_level=dict(type="int"),
            keep=dict(type="int"),
            **consistency_argument_spec(),
            **connection_argument_spec(),
        ),
        supports_check_mode=True,
    )
    p = module.params
    request = BackupRequest(
        volume=p["volume"], dest=p["dest"], compression=p["compression"], compression_level=p["compression_level"],
        keep=p["keep"], helper_image=p["helper_image"],
        consistency=Consistency.from_params(p))
    problems = request.problems()
    if problems:
        module.fail_json(msg="; ".join(problems))
    engine = Engine.from_module(module)
    before = archives_diff(request.dest, request.volume) if module._diff else []
    try:
        outcome = backup_volume(engine, request, check_mode=module.check_mode)
    except (BackupError, EngineError, VolumeError) as exc:
        module.fail_json(msg=str(exc))
    result = dict(outcome.result, changed=outcome.changed)
    if module._diff:
        after = archives_diff(request.dest, request.volume)
        if module.check_mode:
            after = after + [outcome.result["path"].rsplit("/", 1)[-1]]
        result["diff"] = dict(before=dict(archives=before), after=dict(archives=after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
