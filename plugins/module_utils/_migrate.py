# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``recreate: migrate``: give a volume new settings without losing a byte.

Back the volume up (``_backup.backup_volume``), check that the new settings work on a throw-away volume, remove the
volume, create it with the new settings and restore the backup into it (``_backup.restore_volume``, which compares
the restored tree with the archive's listing), then compare every file's content with the archive's. Only then is the
backup deleted; after any failure it is kept and the error names it.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from typing import Any, Iterable, Optional

from ._archive import CHUNK, ArchiveError, ArchiveReader, compression_of, manifest_path, normalize_name
from ._backup import BackupError, BackupRequest, RestoreRequest, backup_volume, restore_volume
from ._engine import Engine, EngineError
from ._volume import (
    HELPER_MOUNT, LOCAL, Migrate, VolumeError, VolumeSpec, ChunkReader, create_volume, data_path_on_host,
    helper_container, pick_helper_image, verify_mount,
)

CHECK_SUFFIX = "-dockhand-migrate-check"


def migrator(backup_dir: Optional[str], helper_image: Optional[str] = None) -> Migrate:
    """The ``migrate`` step for :func:`_volume.converge_volume`, keeping its backup in ``backup_dir``."""

    def migrate(engine: Engine, spec: VolumeSpec, current: dict[str, Any]) -> dict[str, Any]:
        if not backup_dir:
            raise VolumeError("volume %s: recreate: migrate needs backup_dir, the directory on the Docker host's side "
                              "where the backup is kept until the data is verified" % spec.name)
        return migrate_volume(engine, spec, backup_dir, helper_image)

    return migrate


def migrate_volume(engine: Engine, spec: VolumeSpec, backup_dir: str, helper_image: Optional[str]) -> dict[str, Any]:
    name = spec.name
    _check_new_settings(engine, spec, helper_image)
    try:
        backup = backup_volume(engine, BackupRequest(volume=name, dest=backup_dir, helper_image=helper_image),
                               check_mode=False).result
    except (BackupError, VolumeError, EngineError) as exc:
        raise VolumeError("volume %s: recreate: migrate stopped before changing anything, its backup failed: %s"
                          % (name, exc))
    archive = str(backup["path"])
    kept = "; the backup is kept at %s (restore it with dockhand.containers.volume_restore, force: true)" % archive
    try:
        archived = tar_contents(ArchiveReader(archive, compression_of(archive)).chunks())
    except (ArchiveError, OSError) as exc:
        raise VolumeError("volume %s: recreate: migrate stopped before changing anything, its backup does not read "
                          "back: %s%s" % (name, exc, kept))
    try:
        engine.remove_volume(name)
    except EngineError as exc:
        raise VolumeError("volume %s: recreate: migrate could not remove the volume, which is unchanged: %s%s"
                          % (name, exc, kept))
    try:
        restore_volume(engine, RestoreRequest(path=archive, volume=name, driver=spec.driver,
                                              driver_options=dict(spec.driver_options), labels=dict(spec.labels),
                                              helper_image=helper_image), check_mode=False)
        restored = _volume_contents(engine, name, helper_image)
    except (BackupError, VolumeError, EngineError, ArchiveError, OSError) as exc:
        raise VolumeError("volume %s was removed and recreated with the new settings, but restoring its data failed: "
                          "%s%s" % (name, exc, kept))
    differences = _differences(archived, restored)
    if differences:
        raise VolumeError("volume %s was recreated and restored, but its content differs from the backup: %s%s"
                          % (name, "; ".join(differences), kept))
    for path in (archive, manifest_path(archive)):
        os.unlink(path)
    return dict(files=len(archived), content_sha256=_digest(archived), bytes=backup.get("bytes"),
                data_path=backup.get("data_path"), backup_deleted=archive)


def _check_new_settings(engine: Engine, spec: VolumeSpec, helper_image: Optional[str]) -> None:
    """Create (and remove) a throw-away volume with the new settings first: a missing plugin or a mount that fails
    stops the migration before the volume is touched."""
    check = VolumeSpec(name=spec.name + CHECK_SUFFIX, driver=spec.driver, driver_options=dict(spec.driver_options),
                       labels=dict(spec.labels))
    if engine.volume(check.name) is not None:
        engine.remove_volume(check.name)
    try:
        create_volume(engine, check)
        if check.driver == LOCAL and check.driver_options.get("type"):
            verify_mount(engine, check, helper_image)  # removes the volume itself when the mount fails
    except (VolumeError, EngineError) as exc:
        raise VolumeError("volume %s: recreate: migrate stopped before changing anything, the new settings do not "
                          "work: %s" % (spec.name, exc))
    if engine.volume(check.name) is not None:
        engine.remove_volume(check.name)


def tar_contents(chunks: Iterable[bytes]) -> dict[str, str]:
    """Every entry of a tar stream but the root: path -> sha256 of a file's content, ``dir``, or ``link:<target>``.

    A hard link counts as a file with its target's content, as the same tree walked on disk shows it.
    """
    found: dict[str, str] = {}
    with tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as tar:
        for member in tar:
            path = normalize_name(member.name)
            if path == ".":
                continue
            if member.isreg():
                digest = hashlib.sha256()
                handle = tar.extractfile(member)
                while handle is not None:
                    data = handle.read(CHUNK)
                    if not data:
                        break
                    digest.update(data)
                found[path] = digest.hexdigest()
            elif member.islnk():
                found[path] = found.get(normalize_name(member.linkname), "hardlink")
            elif member.issym():
                found[path] = "link:" + member.linkname
            elif member.isdir():
                found[path] = "dir"
    return found


def directory_contents(root: str) -> dict[str, str]:
    """:func:`tar_contents` of a directory on this host (sockets skipped, as tar skips them)."""
    found: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            full = os.path.join(directory, entry)
            path = os.path.relpath(full, root)
            if os.path.islink(full):
                found[path] = "link:" + os.readlink(full)
            elif os.path.isdir(full):
                found[path] = "dir"
            elif os.path.isfile(full):
                digest = hashlib.sha256()
                with open(full, "rb") as handle:
                    for data in iter(lambda: handle.read(CHUNK), b""):
                        digest.update(data)
                found[path] = digest.hexdigest()
    return found


def _volume_contents(engine: Engine, name: str, helper_image: Optional[str]) -> dict[str, str]:
    volume = engine.volume(name)
    if volume is None:
        raise VolumeError("volume %s is gone after its restore" % name)
    path = data_path_on_host(engine, volume)
    if path is not None:
        return directory_contents(path)
    image = pick_helper_image(engine, helper_image)
    if image is None:
        raise VolumeError("volume %s: no image on the host for a helper container to read it back" % name)
    with helper_container(engine, name, image) as container_id:
        return tar_contents(engine.archive(container_id, HELPER_MOUNT + "/."))


def _differences(expected: dict[str, str], found: dict[str, str], limit: int = 5) -> list[str]:
    differences = []
    for path in sorted(set(expected) | set(found)):
        if expected.get(path) != found.get(path):
            differences.append("%s: backup %s, volume %s" % (path, expected.get(path, "missing"),
                                                             found.get(path, "missing")))
            if len(differences) >= limit:
                break
    if len(expected) != len(found):
        differences.insert(0, "%d entries in the backup, %d in the volume" % (len(expected), len(found)))
    return differences


def _digest(contents: dict[str, str]) -> str:
    text = "\n".join("%s %s" % (path, contents[path]) for path in sorted(contents))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
