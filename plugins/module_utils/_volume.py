# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named volumes: the desired spec, comparing it with the Engine's, creating, users, and the data on the host.

One home for every volume rule, used by ``service``/``stack`` (volumes declared with a mount), the ``volume`` and
``volume_info`` modules, and backup/restore (``_archive.py``). Data is never touched here: a volume whose driver or
options differ is refused, not recreated, and removal checks who uses it and whether it holds data.
"""

from __future__ import annotations

import io
import os
import re
import socket
import struct
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional

from ._archive import stored_archives
from ._engine import Engine, EngineError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
LOCAL = "local"
# Keys the Engine's local driver accepts (anything else it refuses at create time).
LOCAL_OPTION_KEYS = ("type", "o", "device", "size")
SETTINGS = frozenset(("driver", "driver_options", "labels"))  # what the Engine fixes when it creates a volume


class VolumeError(Exception):
    """A volume request that cannot be done safely; the message names the volume, the reason and the fix."""


@dataclass(frozen=True)
class VolumeSpec:
    """What a volume should be: the settings the Engine fixes at creation and can never change in place."""

    name: str
    driver: str = LOCAL
    driver_options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # The settings the task gave: only those are compared with an existing volume (the rest only apply at creation).
    declared: frozenset[str] = SETTINGS

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "VolumeSpec":
        """Build from module parameters (``name``, ``driver``, ``driver_options``, ``labels``); raise on bad input.

        A setting that is missing or None is not compared with an existing volume (local / none when creating)."""
        spec = cls(
            name=str(params.get("name") or ""),
            driver=str(params.get("driver") or LOCAL),
            driver_options={str(k): _text(v) for k, v in (params.get("driver_options") or {}).items()},
            labels={str(k): _text(v) for k, v in (params.get("labels") or {}).items()},
            declared=frozenset(key for key in SETTINGS if params.get(key) is not None),
        )
        problems = spec.problems()
        if problems:
            raise VolumeError("volume %s: %s" % (spec.name or "(no name)", "; ".join(problems)))
        return spec

    def problems(self) -> list[str]:
        """Every invalid setting with its fix; empty when the spec is valid."""
        found = []
        if not NAME_RE.match(self.name):
            found.append("name %r is invalid: use letters, digits, '_', '.', '-', starting with a letter or digit, at "
                         "least 2 characters" % self.name)
        if not self.driver.strip():
            found.append("driver must not be empty (use local, or the name of an installed volume plugin)")
        if self.driver == LOCAL:
            found.extend(_local_option_problems(self.driver_options))
        return found

    def differences(self, current: dict[str, Any], labels: bool = True) -> list[str]:
        """What differs from the Engine's inspect of the existing volume (only settings fixed at creation)."""
        found = []
        if "driver" in self.declared and not same_driver(current.get("Driver"), self.driver):
            found.append("driver %s -> %s" % (current.get("Driver"), self.driver))
        if "driver_options" in self.declared and (current.get("Options") or {}) != self.driver_options:
            found.append("driver_options %s -> %s" % (current.get("Options") or {}, self.driver_options))
        if labels and "labels" in self.declared and (current.get("Labels") or {}) != self.labels:
            found.append("labels %s -> %s" % (current.get("Labels") or {}, self.labels))
        return found

    def completed_from(self, current: dict[str, Any]) -> "VolumeSpec":
        """This spec with the settings the task did not give taken from the existing volume (for a recreation);
        options belong to a driver, so a new driver starts without the old one's."""
        driver = self.driver if "driver" in self.declared else current.get("Driver") or LOCAL
        kept_driver = same_driver(driver, current.get("Driver"))
        return VolumeSpec(
            name=self.name,
            driver=driver,
            driver_options=self.driver_options if "driver_options" in self.declared or not kept_driver
            else dict(current.get("Options") or {}),
            labels=self.labels if "labels" in self.declared else dict(current.get("Labels") or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(name=self.name, driver=self.driver, driver_options=dict(self.driver_options),
                    labels=dict(self.labels))


def same_driver(a: Optional[str], b: Optional[str]) -> bool:
    """Whether two volume driver names name the same driver as the Engine resolves them.

    A managed (v2) plugin is a reference with a tag, and the Engine reports its volumes' driver as ``NAME:latest``
    however it was named at creation (``rexray/ebs`` and ``rexray/ebs:latest`` are one driver). A legacy plugin's
    name has no tag, and ``local`` is ``local``.
    """
    return _driver_key(a or LOCAL) == _driver_key(b or LOCAL)


def _driver_key(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return name if name == LOCAL or ":" in last or "@" in last else name + ":latest"


def _text(value: Any) -> str:
    # YAML turns `o: bind` into a string but `nolock: true` into a bool; the Engine wants strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _local_option_problems(options: dict[str, str]) -> list[str]:
    """The local driver mounts only at first use, so catch what would fail there now, with the fix."""
    found = []
    unknown = sorted(set(options) - set(LOCAL_OPTION_KEYS))
    if unknown:
        found.append("driver_options %s are not options of the local driver (it takes %s); for a plugin set driver"
                     % (", ".join(unknown), ", ".join(LOCAL_OPTION_KEYS)))
    kind, mount_options, device = options.get("type"), options.get("o", ""), options.get("device")
    if kind is None:
        if device or mount_options:
            found.append("driver_options device/o need a type (type: none with o: bind for a host directory, tmpfs, "
                         "nfs, cifs)")
        return found
    flags = [part.split("=", 1)[0] for part in mount_options.split(",") if part]
    if kind == "none":
        if "bind" not in flags:
            found.append("driver_options type: none mounts a host directory only with o: bind")
        if not (device or "").startswith("/"):
            found.append("driver_options type: none needs device: an absolute directory on the Docker host")
    elif kind == "nfs":
        if "addr" not in flags:
            found.append("driver_options type: nfs needs o: addr=<server>[,other options]")
        if not (device or "").startswith(":/"):
            found.append("driver_options type: nfs needs device: ':/exported/path'")
    elif kind == "cifs":
        if not (device or "").startswith("//"):
            found.append("driver_options type: cifs needs device: '//server/share'")
    elif kind != "tmpfs" and not device:
        found.append("driver_options type: %s needs device (what to mount)" % kind)
    return found


def volume_users(engine: Engine, name: str) -> list[dict[str, Any]]:
    """The containers that mount the volume, running or stopped: ``name``, ``id``, ``running``; sorted by name."""
    users = [_user(c) for c in engine.containers_using_volume(name)]
    return sorted(users, key=lambda user: user["name"])


def _user(container: dict[str, Any]) -> dict[str, Any]:
    return dict(name=(container.get("Names") or ["/" + container["Id"][:12]])[0].lstrip("/"), id=container["Id"],
                running=container.get("State") == "running")


def engine_root(engine: Engine) -> Optional[str]:
    """How the Engine's own filesystem is reached from here: "" (same mount namespace), "/proc/PID/root", or None.

    Only an Engine on a local unix socket qualifies. The socket's peer is the dockerd process; when it runs in another
    mount namespace (a Docker-in-Docker node whose socket is bind-mounted out), its paths are read through
    ``/proc/PID/root``. A same-named path here could otherwise be another engine's data.
    """
    where = engine.where
    for prefix in ("unix://", "http+unix://"):
        if where.startswith(prefix):
            path = where[len(prefix):]
            break
    else:
        return None
    pid = _socket_peer_pid(path)
    if pid is None:
        return None
    try:
        if os.readlink("/proc/%d/ns/mnt" % pid) == os.readlink("/proc/self/ns/mnt"):
            return ""
        root = "/proc/%d/root" % pid
        os.stat(root + "/")
        return root
    except OSError:  # not ours to look into (another user, or the process is gone)
        return None


def _socket_peer_pid(path: str) -> Optional[int]:
    peer_cred = getattr(socket, "SO_PEERCRED", None)
    if peer_cred is None:  # not Linux
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(path)
            pid, _uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, peer_cred, struct.calcsize("3i")))
    except OSError:
        return None
    return pid if pid > 0 else None  # 0: the peer is in a pid namespace we cannot see


def data_path_on_host(engine: Engine, volume: dict[str, Any]) -> Optional[str]:
    """The directory holding the volume's data, readable where this code runs; None when it is not.

    Only a local volume whose data is a directory of the Engine's host: no mount ``type`` (the Engine's
    ``Mountpoint``) or a bind (``type: none``, ``o: bind``: its ``device``). tmpfs, nfs, cifs and plugin volumes are
    only reachable through a container.
    """
    if volume.get("Driver") != LOCAL:
        return None
    options = volume.get("Options") or {}
    kind = options.get("type")
    if not kind:
        path = volume.get("Mountpoint")
    elif kind == "none" and "bind" in options.get("o", "").split(","):
        path = options.get("device")
    else:
        return None
    if not path or not path.startswith("/"):
        return None
    root = engine_root(engine)
    if root is None:
        return None
    local = root + path
    return local if os.path.isdir(local) else None


def volume_is_empty(engine: Engine, volume: dict[str, Any]) -> Optional[bool]:
    """True/False when the data is visible on this host (see :func:`data_path_on_host`); None when unknown."""
    path = data_path_on_host(engine, volume)
    if path is None:
        return None
    with os.scandir(path) as entries:
        return next(entries, None) is None


def volume_stats(path: str) -> tuple[int, int]:
    """(bytes, files) under ``path``: bytes of regular files, files = every entry but directories; links not followed."""
    total_bytes, files = 0, 0
    for directory, dirnames, filenames in os.walk(path):
        for name in filenames:
            files += 1
            info = os.lstat(os.path.join(directory, name))
            if not os.path.islink(os.path.join(directory, name)):
                total_bytes += info.st_size
        # os.walk lists symlinks to directories as directories but never descends into them: count them as files.
        for name in dirnames:
            if os.path.islink(os.path.join(directory, name)):
                files += 1
    return total_bytes, files


def create_volume(engine: Engine, spec: VolumeSpec) -> dict[str, Any]:
    """Create the volume and return the Engine's inspect of it; an unknown driver names the drivers the Engine has."""
    try:
        engine.create_volume(spec.name, spec.driver, dict(spec.driver_options), dict(spec.labels))
    except EngineError as exc:  # a missing plugin gets a message that lists what is installed
        text = str(exc)
        if spec.driver != LOCAL and ("plugin" in text and "not found" in text):
            raise VolumeError("volume %s: the Docker host has no volume driver %r (it has: %s); install the plugin on "
                              "that host first (%s)" % (spec.name, spec.driver, ", ".join(engine.volume_drivers()), text))
        raise
    created = engine.volume(spec.name)
    if created is None:
        raise VolumeError("volume %s: the Engine reported it created but cannot inspect it" % spec.name)
    return created


def refuse_changed_volumes(engine: Engine, specs: Iterable[VolumeSpec]) -> None:
    """Refuse (never recreate) an existing volume whose driver or driver options differ from its spec."""
    for spec in specs:
        current = engine.volume(spec.name)
        if current is not None and spec.differences(current, labels=False):
            raise VolumeError(
                "volume %s exists with driver %s and options %s, but the service asks for driver %s and options %s; a "
                "volume that may hold data is never recreated: back it up and move the data, or drop driver/driver_options"
                % (spec.name, current.get("Driver"), current.get("Options") or {}, spec.driver, spec.driver_options))


def create_missing_volumes(engine: Engine, specs: Iterable[VolumeSpec]) -> list[str]:
    """Create the volumes that do not exist yet; return their names (so a failed run can remove them, still empty)."""
    created = []
    for spec in specs:
        if engine.volume(spec.name) is None:
            create_volume(engine, spec)
            created.append(spec.name)
    return created


# --------------------------------------------------------------------------------------------- helper containers

HELPER_LABEL = "dockhand.containers.volume-helper"  # every helper container: volume, migrate, backup, restore
HELPER_MOUNT = "/volume"


def pick_helper_image(engine: Engine, wanted: Optional[str] = None) -> Optional[str]:
    """An image already on the host for a helper container (which is created, never started): ``wanted`` or the
    smallest one; None when the host has no image at all. Nothing is pulled."""
    if wanted:
        if engine.image(wanted) is None:
            raise VolumeError("helper_image %s is not on the Docker host; pull it there first (any small image will "
                              "do: the helper container is never started)" % wanted)
        return wanted
    images = [i for i in engine.images() if i.get("Id")]
    if not images:
        return None
    return str(min(images, key=lambda i: int(i.get("Size") or 0))["Id"])


@contextmanager
def helper_container(engine: Engine, volume: str, image: str, read_only: bool = True) -> Iterator[str]:
    """A created (never started) container that mounts ``volume`` at :data:`HELPER_MOUNT`; removed on exit.

    The Engine mounts a container's volumes for its archive API even when it is not running, so the container's id
    reads (``get_archive``) and writes (``put_archive``) the data of any driver, through the Engine.
    """
    name = "dockhand-volume-helper-%s-%s" % (volume, os.urandom(3).hex())
    host_config = engine.host_config(mounts=[{"Type": "volume", "Source": volume, "Target": HELPER_MOUNT,
                                              "ReadOnly": read_only}], network_mode="none")
    container_id = engine.create_container(name, image, dict(command=["dockhand-volume-helper"], entrypoint=[],
                                                             labels={HELPER_LABEL: volume}, network_disabled=True),
                                           host_config, None)
    try:
        yield container_id
    finally:
        # v=True: anonymous volumes the image may declare go with it; named volumes never do.
        try:
            engine.remove(container_id, anonymous_volumes=True)
        except EngineError:
            pass  # never hide the real error; the leftover carries HELPER_LABEL, so it can be found and pruned


def probe_is_empty(engine: Engine, volume: str, image: str) -> bool:
    """Whether the volume holds no entry, read through the Engine (a helper container): for any driver."""
    with helper_container(engine, volume, image) as container_id:
        stream = engine.archive(container_id, HELPER_MOUNT)
        root = HELPER_MOUNT.strip("/")
        try:
            with tarfile.open(fileobj=ChunkReader(stream), mode="r|") as archive:
                for member in archive:  # the first entry is the mount point itself
                    if member.name.rstrip("/") != root:
                        return False
            return True
        finally:
            closer = getattr(stream, "close", None)
            if closer is not None:
                closer()


class ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (the Engine's archive stream), read only as far as needed."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size


def verify_mount(engine: Engine, spec: VolumeSpec, helper_image: Optional[str] = None) -> Optional[str]:
    """Mount a just-created local volume with a mount ``type`` once (the Engine only mounts at first use); if that
    fails, remove the volume again and raise with the Engine's reason. Returns a warning when it cannot be checked."""
    image = pick_helper_image(engine, helper_image)
    if image is None:
        return ("volume %s: not mounted to check it (the host has no image for a helper container): its options are "
                "only tried when a container first uses it" % spec.name)
    try:
        with helper_container(engine, spec.name, image) as container_id:
            for _chunk in engine.archive(container_id, HELPER_MOUNT):
                break
    except EngineError as exc:
        engine.remove_volume(spec.name)
        raise VolumeError("volume %s: the Engine cannot mount it with driver_options %s, so it was removed again "
                          "(nothing is left): %s; check the server, share or device and that the Docker host can mount "
                          "type %s" % (spec.name, spec.driver_options, exc, spec.driver_options.get("type")))
    return None


def is_empty(engine: Engine, volume: dict[str, Any], helper_image: Optional[str] = None) -> Optional[bool]:
    """Empty or not: looked at on the host when the data is there, else through a helper container; None when
    neither is possible (no image on the host for a helper)."""
    known = volume_is_empty(engine, volume)
    if known is not None:
        return known
    image = pick_helper_image(engine, helper_image)
    return None if image is None else probe_is_empty(engine, volume["Name"], image)


# --------------------------------------------------------------------------------------------- facts and converge


def describe_volume(engine: Engine, volume: dict[str, Any], stats: bool = True,
                    users: Optional[list[dict[str, Any]]] = None) -> dict[str, Any]:
    """What ``volume`` and ``volume_info`` return for one volume (``bytes``/``files`` None when not visible here)."""
    path = data_path_on_host(engine, volume)
    size, files = volume_stats(path) if (stats and path) else (None, None)
    return dict(
        name=volume["Name"], driver=volume.get("Driver"), driver_options=volume.get("Options") or {},
        labels=volume.get("Labels") or {}, mountpoint=volume.get("Mountpoint"), scope=volume.get("Scope"),
        created_at=volume.get("CreatedAt"), data_on_host=path is not None, data_path=path, bytes=size, files=files,
        users=volume_users(engine, volume["Name"]) if users is None else users,
    )


def list_volumes(engine: Engine, names: Iterable[str] = (), labels: Iterable[str] = (), driver: Optional[str] = None,
                 stats: bool = True, backup_dir: Optional[str] = None) -> tuple[list[dict[str, Any]], list[str]]:
    """(described volumes sorted by name, asked-for names that do not exist); filters as ``docker volume ls``.

    With ``backup_dir``, each volume also gets ``backup``: its newest archive there (None when it has none)."""
    wanted = list(names)
    filters: dict[str, Any] = {}
    if labels:
        filters["label"] = list(labels)
    if driver:
        filters["driver"] = driver
    found = {v["Name"]: v for v in engine.volumes(filters or None)}
    if wanted:
        found = {name: found[name] for name in wanted if name in found}
    users = _users_by_volume(engine)
    described = [describe_volume(engine, found[name], stats, users.get(name, [])) for name in sorted(found)]
    if backup_dir:
        newest = newest_backups(backup_dir)
        for volume in described:
            volume["backup"] = newest.get(volume["name"])
    return described, [name for name in wanted if name not in found]


def newest_backups(directory: str) -> dict[str, dict[str, Any]]:
    """The newest archive of each volume in ``directory`` (as ``volume_backup`` writes them), by volume name."""
    newest: dict[str, dict[str, Any]] = {}
    for stored in stored_archives(directory):  # oldest first: later ones replace earlier ones
        manifest = stored.manifest
        newest[manifest.volume] = dict(path=stored.path, archived_at=manifest.archived_at, sha256=manifest.sha256,
                                       archive_bytes=manifest.archive_bytes, files=manifest.files,
                                       bytes=manifest.bytes)
    return newest


def _users_by_volume(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every container's named-volume mounts at once (one API call instead of one per volume)."""
    users: dict[str, list[dict[str, Any]]] = {}
    for container in engine.containers_summary():
        user = _user(container)
        for mount in container.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                users.setdefault(mount["Name"], []).append(user)
    return {name: sorted(found, key=lambda u: u["name"]) for name, found in users.items()}


@dataclass
class VolumeResult:
    name: str
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    volume: Optional[dict[str, Any]] = None
    migrated: Optional[dict[str, Any]] = None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self, diff: bool) -> dict[str, Any]:
        result: dict[str, Any] = dict(changed=self.changed, actions=self.actions, volume=self.volume)
        if self.migrated is not None:
            result["migrated"] = self.migrated
        if diff:
            result["diff"] = dict(before=self.before, after=self.after)
        return result


# recreate: migrate, given by the caller (``_migrate.py``: it needs backup/restore, which build on this module).
Migrate = Callable[[Engine, VolumeSpec, dict[str, Any]], dict[str, Any]]


def _settings(volume: Optional[dict[str, Any]]) -> dict[str, Any]:
    if volume is None:
        return {}
    return dict(name=volume["Name"], driver=volume.get("Driver"), driver_options=volume.get("Options") or {},
                labels=volume.get("Labels") or {})


def _users_text(users: list[dict[str, Any]]) -> str:
    return ", ".join("%s (%s)" % (u["name"], "running" if u["running"] else "stopped") for u in users)


def converge_volume(engine: Engine, spec: VolumeSpec, *, state: str = "present", force: bool = False,
                    recreate: str = "never", helper_image: Optional[str] = None, check_mode: bool = False,
                    migrate: Optional[Migrate] = None) -> VolumeResult:
    """Make the volume present (created, never recreated unless ``recreate=migrate``) or absent (refused when used,
    or when it holds data and not ``force``). Every refusal happens before anything changes."""
    current = engine.volume(spec.name)
    result = VolumeResult(name=spec.name, before=_settings(current))
    if state == "absent":
        if current is not None:
            _check_removable(engine, current, force, helper_image)
            result.actions.append("remove")
            if not check_mode:
                engine.remove_volume(spec.name)
        result.changed = bool(result.actions)
        return result
    result.after = spec.completed_from(current).as_dict() if current is not None else spec.as_dict()
    if current is None:
        result.actions.append("create")
        if not check_mode:
            current = create_volume(engine, spec)
            if spec.driver == LOCAL and spec.driver_options.get("type"):
                warning = verify_mount(engine, spec, helper_image)
                result.warnings.extend([warning] if warning else [])
    else:
        differences = spec.differences(current)
        if differences:
            if recreate != "migrate":
                raise VolumeError(
                    "volume %s exists with other settings (%s) and the Engine cannot change them in place; a volume "
                    "that may hold data is never recreated silently: set recreate: migrate to back it up, recreate it "
                    "and restore the data (verified), or keep the current settings" % (spec.name, "; ".join(differences)))
            users = volume_users(engine, spec.name)
            if users:
                raise VolumeError("volume %s: recreate: migrate needs the volume unused, but containers %s use it; "
                                  "remove them first (a service redeploy recreates them)" % (spec.name, _users_text(users)))
            if migrate is None:
                raise VolumeError("volume %s: recreate: migrate is not available in this version of "
                                  "dockhand.containers (it needs volume backup/restore); nothing was changed"
                                  % spec.name)
            result.actions.append("migrate")
            if not check_mode:
                result.migrated = migrate(engine, spec.completed_from(current), current)
                current = engine.volume(spec.name)
    result.changed = bool(result.actions)
    if current is not None:
        result.volume = describe_volume(engine, current)
    elif check_mode:
        result.volume = dict(spec.as_dict(), users=[])
    return result


def _check_removable(engine: Engine, volume: dict[str, Any], force: bool, helper_image: Optional[str]) -> None:
    name = volume["Name"]
    users = volume_users(engine, name)
    if users:
        raise VolumeError("volume %s is used by %s: remove those containers first (force does not override this; "
                          "the volume was left as it is)" % (name, _users_text(users)))
    if force:
        return
    empty = is_empty(engine, volume, helper_image)
    if empty is None:
        raise VolumeError("volume %s: cannot tell whether it holds data (driver %s keeps it where this host cannot "
                          "look, and the host has no image for a helper container): set helper_image, or force: true "
                          "to delete it whatever it holds" % (name, volume.get("Driver")))
    if not empty:
        path = data_path_on_host(engine, volume)
        detail = ""
        if path:
            size, files = volume_stats(path)
            detail = " (%d files, %d bytes)" % (files, size)
        raise VolumeError("volume %s holds data%s: back it up first (dockhand.containers.volume_backup) and set "
                          "force: true to delete it; the volume was left as it is" % (name, detail))


def volume_argument_spec() -> dict[str, Any]:
    """The ``volume`` module's own options (the connection options come from ``_connection``)."""
    return dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        driver=dict(type="str"),
        driver_options=dict(type="dict"),
        labels=dict(type="dict"),
        force=dict(type="bool", default=False),
        recreate=dict(type="str", default="never", choices=["never", "migrate"]),
        helper_image=dict(type="str"),
        backup_dir=dict(type="path"),
    )


def volume_info_argument_spec() -> dict[str, Any]:
    return dict(
        name=dict(type="list", elements="str", default=[]),
        labels=dict(type="list", elements="str", default=[]),
        driver=dict(type="str"),
        stats=dict(type="bool", default=True),
        backup_dir=dict(type="path"),
    )
