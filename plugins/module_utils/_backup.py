# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backing up a volume to an archive file and restoring it: the steps around ``_archive.py``'s format.

Two data paths, chosen per volume and reported: ``fast`` when the volume's data is a directory this host
can read (GNU tar on the directory, nothing through the Engine), ``engine`` otherwise (plugin, tmpfs, nfs
volumes, or an Engine on another machine): a helper container that mounts the volume is created but never
started, and the Engine's archive API reads or writes the volume through it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from ._archive import (
    ArchiveError, ArchiveReader, ArchiveWriter, CHUNK, COLLECTION_VERSION, DEFAULT_LEVELS, Entry, Listing, Manifest,
    UnsafeEntry, archive_name, archive_stream, archive_tree, check_compression, clear_directory, directory_entry,
    STAGING_PREFIX, ensure_directory, extract_staged, extract_to_directory, host_listing, manifest_path, prune_archives,
    rehash, remove_stale_staging, stored_archives, stream_listing, swap_in, utc_now, verify_archive,
    write_file_atomically,
)
from ._engine import Engine, EngineError
from ._volume import (
    HELPER_LABEL, HELPER_MOUNT, VolumeError, VolumeSpec, create_volume, data_path_on_host, helper_container,
    pick_helper_image, volume_users,
)

FAST, ENGINE = "fast", "engine"


class BackupError(Exception):
    """A backup or restore that failed or was refused; the message says what happened to the data."""


@dataclass
class Consistency:
    """How the data is kept still during the copy: stop the volume's users, or commands in a container."""

    stop_containers: bool = False
    stop_timeout: int = 10
    command_container: Optional[str] = None
    pre_command: Optional[str] = None
    post_command: Optional[str] = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Consistency":
        return cls(stop_containers=params["stop_containers"], stop_timeout=params["stop_timeout"],
                   command_container=params["command_container"], pre_command=params["pre_command"],
                   post_command=params["post_command"])

    def problems(self) -> list[str]:
        found = []
        if (self.pre_command or self.post_command) and not self.command_container:
            found.append("pre_command/post_command need command_container (the container to run them in)")
        if self.command_container and not (self.pre_command or self.post_command):
            found.append("command_container is set but neither pre_command nor post_command is")
        if self.stop_containers and self.command_container:
            found.append("stop_containers and pre_command/post_command exclude each other: a stopped container "
                         "cannot run commands; choose one")
        if self.stop_timeout < 0:
            found.append("stop_timeout must be >= 0 seconds")
        return found


def consistency_argument_spec() -> dict[str, Any]:
    """Options shared by volume_backup and volume_restore: keeping the data still, the helper image."""
    return dict(
        stop_containers=dict(type="bool", default=False),
        stop_timeout=dict(type="int", default=10),
        command_container=dict(type="str"),
        pre_command=dict(type="str"),
        post_command=dict(type="str"),
        helper_image=dict(type="str"),
    )


@dataclass
class Outcome:
    changed: bool
    result: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------------
# The Engine side: helper containers, exec, stopping users


def _helper_image(engine: Engine, wanted: Optional[str]) -> str:
    """``helper_image`` if given (it must be on the host: nothing is pulled), else the host's smallest image."""
    image = pick_helper_image(engine, wanted)
    if image is None:
        raise BackupError("this volume's data is reachable only through a container, and the Docker host has no "
                          "image for one; set helper_image to an image on that host (any image: it never runs)")
    return image


def _read_through(engine: Engine, helper: str, volume: str) -> Iterator[bytes]:
    """The volume's tar stream through the Engine's archive API, from a helper container mounting it."""
    stream, _stat = engine.call("reading volume %s through the Engine" % volume,
                                engine.api.get_archive, helper, HELPER_MOUNT + "/.", chunk_size=CHUNK)
    try:
        yield from stream
    except Exception as exc:  # requests/urllib3 errors surface while the stream is read
        raise BackupError("reading volume %s through the Engine failed midway: %s" % (volume, exc))


def _write_through(engine: Engine, helper: str, volume: str, chunks: Iterator[bytes], root: Optional[Entry]) -> None:
    """Write an archive's tar stream, as it is, into the volume through a helper container mounting it (writable),
    then give the volume's root the archived root's owner, mode and mtime (``root``, the listing's ``.``)."""
    done = engine.call("writing volume %s through the Engine" % volume, engine.api.put_archive,
                       helper, HELPER_MOUNT, (c for c in chunks if c))
    if done and root is not None:
        done = engine.call("setting the root of volume %s through the Engine" % volume, engine.api.put_archive,
                           helper, "/", directory_entry(HELPER_MOUNT.lstrip("/"), root))
    if not done:
        raise BackupError("the Engine did not accept the archive for volume %s" % volume)


def _clear_through_engine(engine: Engine, volume: str, image: str) -> None:
    """Empty a volume only a container can reach; needs a shell in the helper image."""
    script = "rm -rf %s/..?* %s/.[!.]* %s/*" % ((HELPER_MOUNT,) * 3)
    host_config = engine.host_config(binds=["%s:%s" % (volume, HELPER_MOUNT)], network_mode="none")
    created = engine.call("creating a helper container to empty volume %s" % volume, engine.api.create_container,
                          image=image, command=["-c", script], entrypoint=["/bin/sh"], labels={HELPER_LABEL: "1"},
                          host_config=host_config, network_disabled=True, user="0")
    try:
        engine.start(created["Id"])
        code = engine.call("emptying volume %s" % volume, engine.api.wait, created["Id"])
        status = code.get("StatusCode") if isinstance(code, dict) else code
        if status != 0:
            raise BackupError("emptying volume %s in a helper container exited %s: %s"
                              % (volume, status, engine.logs_tail(created["Id"]).strip()))
    except EngineError as exc:
        raise BackupError("emptying volume %s needs a helper image with /bin/sh (set helper_image, e.g. a busybox "
                          "image on the host): %s" % (volume, exc))
    finally:
        try:
            engine.remove(created["Id"])
        except EngineError:
            pass


def _exec(engine: Engine, container: str, command: str, what: str) -> str:
    created = engine.call("%s in %s" % (what, container), engine.api.exec_create, container, ["/bin/sh", "-c", command])
    output = engine.call("%s in %s" % (what, container), engine.api.exec_start, created["Id"])
    code = engine.call("%s in %s" % (what, container), engine.api.exec_inspect, created["Id"]).get("ExitCode")
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
    if code != 0:
        raise BackupError("%s `%s` in container %s exited %s: %s" % (what, command, container, code, text.strip()[-1000:]))
    return text


class _StillData:
    """Stops the volume's running users (or runs pre_command) on enter; starts them (post_command) on exit.

    Exit runs whatever happened inside, so a failed copy never leaves a service down.
    """

    def __init__(self, engine: Engine, volume: str, how: Consistency) -> None:
        self.engine = engine
        self.volume = volume
        self.how = how
        self.stopped: list[dict[str, Any]] = []
        self.pre_ran = False
        self.problems: list[str] = []

    def __enter__(self) -> "_StillData":
        try:
            if self.how.stop_containers:
                for user in volume_users(self.engine, self.volume):
                    if user["running"]:
                        self.engine.stop(user["id"], timeout=self.how.stop_timeout)
                        self.stopped.append(user)
            if self.how.pre_command and self.how.command_container:
                _exec(self.engine, self.how.command_container, self.how.pre_command, "pre_command")
                self.pre_ran = True
        except BaseException:
            self.finish()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def finish(self) -> None:
        if self.pre_ran and self.how.post_command and self.how.command_container:
            self.pre_ran = False
            try:
                _exec(self.engine, self.how.command_container, self.how.post_command, "post_command")
            except (BackupError, EngineError) as err:
                self.problems.append(str(err))
        for user in self.stopped:
            try:
                self.engine.start(user["id"])
            except EngineError as err:
                self.problems.append("starting %s again failed: %s" % (user["name"], err))

    @property
    def stopped_names(self) -> list[str]:
        return [u["name"] for u in self.stopped]

    def note(self) -> str:
        """What happened to the volume's users, for an error message."""
        parts = []
        if self.stopped and not self.problems:
            parts.append(" (the stopped containers %s run again)" % ", ".join(self.stopped_names))
        if self.problems:
            parts.append("; and afterwards: " + "; ".join(self.problems))
        return "".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# Backup


@dataclass
class BackupRequest:
    volume: str
    dest: str
    compression: str = "zstd"
    compression_level: Optional[int] = None
    keep: Optional[int] = None
    helper_image: Optional[str] = None
    consistency: Consistency = field(default_factory=Consistency)

    def problems(self) -> list[str]:
        found = list(self.consistency.problems())
        try:
            check_compression(self.compression, self.compression_level)
        except ArchiveError as exc:
            found.append(str(exc))
        if not self.dest.startswith("/"):
            found.append("dest must be an absolute directory on the Docker host's side (got %r)" % self.dest)
        if self.keep is not None and self.keep < 1:
            found.append("keep must be at least 1 (the archive just made); leave it unset to keep every archive")
        return found


def _volume_or_fail(engine: Engine, name: str) -> dict[str, Any]:
    volume = engine.volume(name)
    if volume is None:
        raise BackupError("volume %s does not exist on the Docker host %s" % (name, engine.where))
    return volume


def backup_volume(engine: Engine, req: BackupRequest, check_mode: bool) -> Outcome:
    problems = req.problems()
    if problems:
        raise BackupError("; ".join(problems))
    volume = _volume_or_fail(engine, req.volume)
    host_path = data_path_on_host(engine, volume)
    data_path = FAST if host_path else ENGINE
    started = utc_now()
    archive = os.path.join(req.dest, archive_name(req.volume, started, req.compression))
    base: dict[str, Any] = dict(volume=req.volume, path=archive, manifest=manifest_path(archive),
                                data_path=data_path, compression=req.compression)
    if check_mode:
        to_stop = [u["name"] for u in volume_users(engine, req.volume) if u["running"]] \
            if req.consistency.stop_containers else []
        if host_path:
            listing = host_listing(host_path)
            base.update(files=listing.files, bytes=listing.bytes)
        return Outcome(True, dict(base, stopped=to_stop))
    image = None if host_path else _helper_image(engine, req.helper_image)
    ensure_directory(req.dest)
    clock = time.monotonic()
    still = _StillData(engine, req.volume, req.consistency)
    try:
        with still:
            with ArchiveWriter(archive, req.compression, req.compression_level) as writer:
                if host_path:
                    listing = archive_tree(host_path, writer)
                else:
                    with helper_container(engine, req.volume, str(image)) as helper:
                        listing = archive_stream(_read_through(engine, helper, req.volume), writer)
                digest = writer.commit()
    except (ArchiveError, EngineError, BackupError, VolumeError) as exc:
        raise BackupError("backup of volume %s failed and left no archive: %s%s" % (req.volume, exc, still.note()))
    if still.problems:
        raise BackupError("backup of volume %s was written to %s%s" % (req.volume, archive, still.note()))
    duration = time.monotonic() - clock
    manifest = Manifest(
        volume=req.volume, driver=volume.get("Driver") or "local", options=dict(volume.get("Options") or {}),
        labels=dict(volume.get("Labels") or {}), created=volume.get("CreatedAt"), archived_at=started.isoformat(),
        archive=os.path.basename(archive), compression=req.compression,
        compression_level=DEFAULT_LEVELS[req.compression] if req.compression_level is None else req.compression_level,
        archive_bytes=os.path.getsize(archive), sha256=digest, files=listing.files, bytes=listing.bytes,
        listing_sha256=listing.digest(), data_path=data_path, collection_version=COLLECTION_VERSION)
    try:
        write_file_atomically(manifest_path(archive), manifest.to_json().encode("utf-8"))
    except OSError as exc:
        os.unlink(archive)
        raise BackupError("writing the manifest %s failed (%s); the archive was removed"
                          % (manifest_path(archive), exc.strerror))
    pruned: list[str] = []
    if req.keep:
        if rehash(archive) != digest:
            raise BackupError("the new archive %s does not read back with the sha256 it was written with; no old "
                              "archive was deleted" % archive)
        pruned = prune_archives(req.dest, req.volume, req.keep)
    return Outcome(True, dict(base, sha256=digest, archive_bytes=manifest.archive_bytes, files=listing.files,
                              bytes=listing.bytes, duration=round(duration, 3), stopped=still.stopped_names,
                              pruned=pruned))


# ---------------------------------------------------------------------------------------------------------------
# Restore


@dataclass
class RestoreRequest:
    path: str
    volume: Optional[str] = None
    driver: Optional[str] = None
    driver_options: Optional[dict[str, str]] = None
    labels: Optional[dict[str, str]] = None
    force: bool = False
    helper_image: Optional[str] = None
    consistency: Consistency = field(default_factory=Consistency)

    def problems(self) -> list[str]:
        found = list(self.consistency.problems())
        if not self.path.startswith("/"):
            found.append("path must be the absolute path of an archive on the Docker host's side (got %r)"
                         % self.path)
        return found


def _current_listing(engine: Engine, name: str, host_path: Optional[str], image: Optional[str]) -> Optional[Listing]:
    """What the volume holds now; None when it holds something no archive could (then it differs anyway)."""
    try:
        if host_path:
            return host_listing(host_path)
        with helper_container(engine, name, str(image)) as helper:
            return stream_listing(_read_through(engine, helper, name))
    except UnsafeEntry:
        return None


def _staging_parent(volume: dict[str, Any], host_path: Optional[str]) -> Optional[str]:
    """Where a restore can stage an archive beside the volume's data: the Engine's own directory of a local volume
    (the parent of its ``_data``: containers never see it, and the Engine removes it with the volume), when it is on
    the data's filesystem. None for other data (a bind's ``device`` is the user's directory) and for other drivers."""
    mountpoint = str(volume.get("Mountpoint") or "")
    if (not host_path or volume.get("Driver") != "local" or (volume.get("Options") or {}).get("type")
            or not mountpoint.endswith("/_data") or not host_path.endswith(mountpoint)):
        return None
    parent = os.path.dirname(host_path)
    try:
        return parent if os.stat(parent).st_dev == os.stat(host_path).st_dev else None
    except OSError:
        return None


def _may_stage(spec: VolumeSpec, volume: Optional[dict[str, Any]]) -> bool:
    """Whether the volume (or the one about to be made from ``spec``) is a plain local volume: its restore can then
    read the archive once, staged beside the data, instead of verifying it whole before writing anything."""
    if volume is not None:
        return volume.get("Driver") == "local" and not (volume.get("Options") or {}).get("type")
    return spec.driver == "local" and "type" not in spec.driver_options


def restore_volume(engine: Engine, req: RestoreRequest, check_mode: bool) -> Outcome:
    """Restore an archive into a volume. Nothing the volume's users see is written before the archive's sha256, its
    listing and every entry (the safety rule) agreed with the manifest:

    - a plain local volume (the usual case) is restored in one pass over the archive, extracted into a staging
      directory beside the data (the Engine's own directory of the volume) and moved in by renames once verified;
    - any other volume has the whole archive verified first, then written (a second pass).
    """
    problems = req.problems()
    if problems:
        raise BackupError("; ".join(problems))
    try:
        manifest = Manifest.load(manifest_path(req.path))
        if not os.path.isfile(req.path):
            raise ArchiveError("archive %s does not exist" % req.path)
    except ArchiveError as exc:
        raise BackupError("%s; nothing was written" % exc)
    name = req.volume or manifest.volume
    spec = VolumeSpec.from_params(dict(
        name=name, driver=req.driver or manifest.driver,
        driver_options=manifest.options if req.driver_options is None else req.driver_options,
        labels=manifest.labels if req.labels is None else req.labels))
    volume = engine.volume(name)
    archived: Optional[Listing] = None
    if check_mode or not _may_stage(spec, volume):
        # Checksum, manifest agreement and the safety rule, before the Engine is asked to change anything.
        archived = _verify_or_refuse(req.path, manifest, None)
    base: dict[str, Any] = dict(volume=name, path=req.path, sha256=manifest.sha256, files=manifest.files,
                                bytes=manifest.bytes)
    after = dict(volume=name, exists=True, files=manifest.files, listing_sha256=manifest.listing_sha256)
    created = volume is None
    if volume is None:
        base["diff"] = dict(before=dict(volume=name, exists=False), after=after)
        if check_mode:
            return Outcome(True, dict(base, created=True, cleared=False, data_path=None, stopped=[]))
        volume = create_volume(engine, spec)
    host_path = data_path_on_host(engine, volume)
    data_path = FAST if host_path else ENGINE
    image = None if host_path else _helper_image(engine, req.helper_image)
    base.update(created=created, data_path=data_path, driver=volume.get("Driver"))
    current = None if created else _current_listing(engine, name, host_path, image)
    if not created:
        base["diff"] = dict(before=dict(volume=name, exists=True, files=current.files if current else None,
                                        listing_sha256=current.digest() if current else None), after=after)
    if current is not None and current.digest() == manifest.listing_sha256:
        if archived is None:
            archived = _verify_or_refuse(req.path, manifest, None)  # nothing to write, but a damaged archive is reported
        return Outcome(False, dict(base, cleared=False, stopped=[]))
    empty = created or (current is not None and current.files == 0)
    if not empty and not req.force:
        held = "%d entries" % current.files if current is not None else "data"
        raise BackupError("volume %s is not empty (it holds %s that differ from the archive); set force: true to "
                          "replace its content with the archive's" % (name, held))
    if check_mode:
        to_stop = [u["name"] for u in volume_users(engine, name) if u["running"]] \
            if req.consistency.stop_containers else []
        return Outcome(True, dict(base, cleared=not empty, stopped=to_stop))
    staging_parent = _staging_parent(volume, host_path)
    if archived is None and staging_parent is None:
        archived = _verify_or_refuse(req.path, manifest, name if created else None, engine)
    clock = time.monotonic()
    still = _StillData(engine, name, req.consistency)
    try:
        with still:
            if host_path and staging_parent:
                remove_stale_staging(staging_parent)
                staging = os.path.join(staging_parent, "%s%d" % (STAGING_PREFIX, os.getpid()))
                try:
                    archived = extract_staged(req.path, manifest, staging)
                except ArchiveError as exc:
                    raise BackupError("%s; %s" % (exc, _nothing_written(engine, name if created else None)))
                swap_in(staging, host_path)
                restored = host_listing(host_path)
            elif host_path:
                if not empty:
                    clear_directory(host_path)
                extract_to_directory(req.path, manifest, host_path)
                restored = host_listing(host_path)
            else:
                if not empty:
                    _clear_through_engine(engine, name, str(image))
                reader = ArchiveReader(req.path, manifest.compression)
                with helper_container(engine, name, str(image), read_only=False) as helper:
                    _write_through(engine, helper, name, reader.chunks(), (archived or Listing()).entries.get("."))
                if reader.hexdigest() != manifest.sha256:
                    raise BackupError("archive %s changed while it was restored; restore it again" % req.path)
                restored = _current_listing(engine, name, None, image) or Listing()
    except BackupError as exc:
        raise BackupError("%s%s" % (exc, still.note()))
    except (ArchiveError, EngineError, VolumeError, OSError) as exc:
        raise BackupError("restore of %s into volume %s failed: %s%s" % (req.path, name, exc, still.note()))
    if still.problems:
        raise BackupError("volume %s was restored from %s%s" % (name, req.path, still.note()))
    if archived is None:  # every path above verified the archive; this only guards a future path that does not
        raise BackupError("internal: volume %s was restored from an archive that was not verified" % name)
    differences = restored.differences(archived)
    if differences:
        raise BackupError("volume %s differs from the archive after the restore: %s" % (name, "; ".join(differences)))
    return Outcome(True, dict(base, cleared=not empty, stopped=still.stopped_names,
                              duration=round(time.monotonic() - clock, 3)))


def _verify_or_refuse(path: str, manifest: Manifest, created: Optional[str], engine: Optional[Engine] = None) -> Listing:
    """The archive's listing once it is verified whole (nothing written); a volume this restore created is removed
    again when it is not."""
    try:
        return verify_archive(path, manifest)
    except ArchiveError as exc:
        raise BackupError("%s; %s" % (exc, _nothing_written(engine, created)))


def _nothing_written(engine: Optional[Engine], created: Optional[str]) -> str:
    """The end of a refused restore's message; the volume the restore created (empty) is removed again."""
    if engine is None or created is None:
        return "nothing was written"
    try:
        engine.remove_volume(created)
    except EngineError as exc:
        return "the volume %s this restore created could not be removed again (%s); nothing was written" % (
            created, exc)
    return "the volume %s this restore created was removed again; nothing was written" % created


def archives_diff(directory: str, volume: str) -> list[str]:
    """The volume's archives in ``directory`` (for diff mode); unreadable directories show as none."""
    try:
        return [os.path.basename(a.path) for a in stored_archives(directory, volume)]
    except ArchiveError:
        return []
