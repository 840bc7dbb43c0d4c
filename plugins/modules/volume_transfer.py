#!/usr/bin/python
# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_transfer
short_description: Stream a volume's data from one host to another through the controller, verified on arrival
version_added: 0.1.0
description:
  - Runs on the controller (delegate the task to C(localhost)) and starts C(ssh source <send> | ssh target <receive>). The
    source reads the directory with GNU tar (every entry checked with the archive safety rule first), compresses
    the stream and hashes it; the target checks each entry with the same rule B(before) tar sees it, hashes what
    it received and extracts it into O(target.path). No archive is stored anywhere and the data never passes
    through this module's memory (the controller only holds the pipe between the two SSH clients).
  - Both ends run this collection's archive code (C(plugins/module_utils/_archive.py)), sent inside the SSH
    command; nothing is installed or left on the hosts. They need Python 3 and GNU tar (and C(libzstd) for
    O(compression=zstd)).
  - The target accepts the data only when the stream ended with the sender's trailer, its sha256 and length
    match what arrived, the entries the stream held are those the source listed (unless O(live)), and the tree
    tar wrote lists exactly as the stream did (paths, types, modes, owners, sizes, mtimes, link targets). On any
    failure, a refused entry or a connection cut, it empties O(target.path) again, and the module fails saying
    which end failed.
  - O(target.path) must be empty, or hold exactly the listing O(replace_listing) names (a first copy made by an
    earlier run of this module), which is then replaced.
  - M(dockhand.containers.volume_info) returns the directory of a volume's data as RV(dockhand.containers.volume_info#module:volumes[].data_path);
    the playbook C(dockhand.containers.move_service) shows how the SSH options are taken from the inventory.
author: dockhand.containers maintainers (@dockhand)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  source:
    description: The host the data is read on, as the controller reaches it over SSH, and the directory there.
    type: dict
    required: true
    suboptions: &endpoint
      host:
        description: Address or name for SSH (the inventory's C(ansible_host)).
        type: str
        required: true
      path:
        description: Absolute directory of the volume's data on that host.
        type: str
        required: true
      name:
        description: The host's inventory name, for messages. Default O(source.host).
        type: str
      port:
        description: SSH port.
        type: int
      user:
        description: SSH user; it must be able to read (source) or write with the files' owners (target) O(source.path).
        type: str
      private_key_file:
        description: SSH private key.
        type: path
      ssh_executable:
        description: The SSH client to run.
        type: str
        default: ssh
      ssh_args:
        description:
          - Options for the SSH client (Ansible's C(ssh_args)); C(-C) is dropped. The stream always uses a
            connection of its own without compression (C(ControlMaster=no), C(Compression=no)).
        type: raw
      ssh_common_args:
        description: More SSH client options (Ansible's C(ansible_ssh_common_args)).
        type: str
      ssh_extra_args:
        description: More SSH client options (Ansible's C(ansible_ssh_extra_args)).
        type: str
      python:
        description: Python 3 on that host.
        type: str
        default: /usr/bin/python3
  target:
    description: The host the data is written on, and the directory there; the same suboptions as O(source).
    type: dict
    required: true
    suboptions: *endpoint
  compression:
    description: How the stream is compressed on the way; C(none) saves CPU on fast links and incompressible data.
    type: str
    choices: [zstd, none]
    default: zstd
  compression_level:
    description: zstd level 1-19 (default 3).
    type: int
  live:
    description:
      - The source's data may change while it is read (a first copy while its service runs). The transfer is still
        verified end to end (sha256, and the target lists as the stream did); RV(source_changed) says whether the
        source changed meanwhile.
    type: bool
    default: false
  replace_listing:
    description:
      - The listing sha256 (RV(listing_sha256) of an earlier run) the target directory may hold; it is then emptied
        and replaced. Any other content makes the module fail without writing.
    type: str
attributes:
  check_mode:
    support: full
    details: Reports the two commands' hosts and directories; nothing is run on the hosts.
  diff_mode:
    support: full
    details: The target directory's listing before (as given by O(replace_listing), or empty) and after.
  platform:
    platforms: posix
seealso:
  - module: dockhand.containers.volume_backup
  - module: dockhand.containers.volume_info
"""

EXAMPLES = r"""
- name: Copy a stopped service's volume from node1 to node2 through the controller
  dockhand.containers.volume_transfer:
    source:
      host: 10.0.0.1
      user: root
      path: /var/lib/docker/volumes/web-data/_data
    target:
      host: 10.0.0.2
      user: root
      path: /var/lib/docker/volumes/web-data/_data
  delegate_to: localhost
  register: moved
"""

RETURN = r"""
data_path:
  description: C(stream).
  returned: always
  type: str
files:
  description: Entries written on the target (files, directories, links; not the root), read back after the transfer.
  returned: success
  type: int
bytes:
  description: Sum of the regular files' sizes on the target.
  returned: success
  type: int
listing_sha256:
  description: sha256 of the target's listing after the transfer (what O(replace_listing) takes).
  returned: success
  type: str
sha256:
  description: sha256 of the stream, the same on both ends.
  returned: success
  type: str
stream_bytes:
  description: Bytes of the (compressed) stream.
  returned: success
  type: int
source_files:
  description: Entries the source's safety walk listed (the walk feeds tar as it goes).
  returned: success
  type: int
source_listing_sha256:
  description: sha256 of the source's listing, from the same walk.
  returned: success
  type: str
source_changed:
  description: Whether the source changed while it was read (only possible with O(live)).
  returned: success
  type: bool
duration:
  description: Seconds from starting the two SSH clients to the receiver's report.
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.dockhand.containers.plugins.module_utils._transfer import (
    STREAM, Endpoint, TransferError, TransferRequest, transfer, transfer_argument_spec,
)


def main() -> None:
    module = AnsibleModule(argument_spec=transfer_argument_spec(), supports_check_mode=True)
    p = module.params
    request = TransferRequest(source=Endpoint.from_params(p["source"]), target=Endpoint.from_params(p["target"]),
                              compression=p["compression"], compression_level=p["compression_level"],
                              live=p["live"], replace_listing=p["replace_listing"])
    problems = request.problems()
    if problems:
        module.fail_json(msg="; ".join(problems))
    where = dict(source="%s:%s" % (request.source.name, request.source.path),
                 target="%s:%s" % (request.target.name, request.target.path))
    before = dict(where, listing_sha256=request.replace_listing)
    if module.check_mode:
        module.exit_json(changed=True, data_path=STREAM, diff=dict(before=before, after=where))
    try:
        result = transfer(request)
    except TransferError as exc:
        module.fail_json(msg="transfer of %(source)s to %(target)s failed: " % where + str(exc), data_path=STREAM)
    diff = dict(before=before, after=dict(where, files=result["files"], listing_sha256=result["listing_sha256"]))
    module.exit_json(changed=True, diff=diff, **result)


if __name__ == "__main__":
    main()
