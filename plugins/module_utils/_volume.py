# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named volumes: the desired spec, comparing it with the Engine's, creating, users, and the data on the host.

One home for every volume rule, used by ``service``/``stack`` (volumes declared with a mount), the ``volume`` and
``volume_info`` modules, and backup/restore (``_archive.py``). Data is never touched here: a volume whose driver or
options differ is refused, not recreated, and removal checks who uses it and whether it holds data.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ._engine import Engine, EngineError

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
LOCAL = "local"
# Keys the Engine's local driver accepts (anything else it refuses at create time).
LOCAL_OPTION_KEYS = ("type", "o", "device", "size")


class VolumeError(Exception):
    """A volume request that cannot be done safely; the message names the volume, the reason and the fix."""


@dataclass(frozen=True)
class VolumeSpec:
    """What a volume should be: the settings the Engine fixes at creation and can never change in place."""

    name: str
    driver: str = LOCAL
    driver_options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "VolumeSpec":
        """Build from module parameters (``name``, ``driver``, ``driver_options``, ``labels``); raise on bad input."""
        spec = cls(
            name=str(params.get("name") or ""),
            driver=str(params.get("driver") or LOCAL),
            driver_options={str(k): _text(v) for k, v in (params.get("driver_options") or {}).items()},
            labels={str(k): _text(v) for k, v in (params.get("labels") or {}).items()},
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
        if (current.get("Driver") or LOCAL) != self.driver:
            found.append("driver %s -> %s" % (current.get("Driver"), self.driver))
        if (current.get("Options") or {}) != self.driver_options:
            found.append("driver_options %s -> %s" % (current.get("Options") or {}, self.driver_options))
        if labels and (current.get("Labels") or {}) != self.labels:
            found.append("labels %s -> %s" % (current.get("Labels") or {}, self.labels))
        return found

    def as_dict(self) -> dict[str, Any]:
        return dict(name=self.name, driver=self.driver, driver_options=dict(self.driver_options),
                    labels=dict(self.labels))


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
    users = [dict(name=(c.get("Names") or ["/" + c["Id"][:12]])[0].lstrip("/"), id=c["Id"],
                  running=c.get("State") == "running")
             for c in engine.containers_using_volume(name)]
    return sorted(users, key=lambda user: user["name"])


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
