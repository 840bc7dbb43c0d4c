# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The desired service: its options (argument spec), normalisation, validation and Engine mapping.

``service`` and ``stack`` both build a :class:`ServiceSpec` from these options; nothing else in the
collection declares a service setting.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from ansible.module_utils.common.text.formatters import human_to_bytes

from ._image_ref import ImageRef, ImageRefError, parse_image_ref
from ._logging import DEFAULT_DRIVER, normalise_log_config
from ._record import LABEL_PREFIX

try:
    from docker.utils.ports import split_port
except ImportError:  # the module reports the missing SDK when it connects; parsing falls back to its own message
    split_port = None

RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
STATES = ("present", "started", "stopped", "absent")
SECRET_MASK = "********"
DEFAULT_RESTART_POLICY = "on-failure"
DEFAULT_RESTART_RETRIES = 5
DEFAULT_STOP_TIMEOUT = 10
DEFAULT_WAIT_TIMEOUT = 60
SECRET_FIELDS = ("secret_env",)

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_PROPAGATIONS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")


def service_options() -> dict[str, Any]:
    """Argument spec of one service; the ``service`` module and each item of ``stack.services`` use it."""
    return dict(
        name=dict(type="str", required=True),
        image=dict(type="str"),
        pin=dict(type="bool", default=False),
        state=dict(type="str", default="started", choices=list(STATES)),
        command=dict(type="raw"),
        entrypoint=dict(type="raw"),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        ports=dict(type="list", elements="raw", default=[]),
        volumes=dict(type="list", elements="raw", default=[]),
        networks=dict(type="list", elements="str", default=[]),
        labels=dict(type="dict", default={}),
        user=dict(type="str"),
        memory=dict(type="str"),
        memory_reservation=dict(type="str"),
        cpus=dict(type="float"),
        healthcheck=dict(type="dict", options=dict(
            test=dict(type="raw"),
            interval=dict(type="raw"),
            timeout=dict(type="raw"),
            retries=dict(type="int"),
            start_period=dict(type="raw"),
            disable=dict(type="bool", default=False),
        )),
        stop_timeout=dict(type="int", default=DEFAULT_STOP_TIMEOUT),
        restart_policy=dict(type="str", default=DEFAULT_RESTART_POLICY, choices=list(RESTART_POLICIES)),
        restart_retries=dict(type="int"),
        log_driver=dict(type="str", default=DEFAULT_DRIVER),
        log_options=dict(type="dict", default={}),
        wait=dict(type="str", default="auto", choices=["auto", "none", "running", "healthy"]),
        wait_timeout=dict(type="int", default=DEFAULT_WAIT_TIMEOUT),
        update_strategy=dict(type="str", default="stop-first", choices=["stop-first", "start-first"]),
        rollback=dict(type="bool", default=False),
        adopt=dict(type="bool", default=False),
        depends_on=dict(type="list", elements="str", default=[]),
    )


class SpecError(ValueError):
    """One or more invalid options; the message lists every problem with its fix."""

    def __init__(self, subject: str, problems: list[str]) -> None:
        super().__init__("%s: %s" % (subject, "; ".join(problems)))
        self.problems = problems


@dataclass(frozen=True)
class Mount:
    type: str
    target: str
    source: Optional[str] = None
    read_only: bool = False
    driver: Optional[str] = None
    driver_options: tuple[tuple[str, str], ...] = ()
    volume_labels: tuple[tuple[str, str], ...] = ()
    tmpfs_size: Optional[int] = None
    tmpfs_mode: Optional[int] = None
    propagation: Optional[str] = None
    selinux: Optional[str] = None  # z (shared) or Z (private) relabelling, as with docker run -v

    def as_field(self) -> dict[str, Any]:
        """The recorded form: what the container was created with (driver settings belong to the volume)."""
        value: dict[str, Any] = {"type": self.type, "target": self.target, "read_only": self.read_only}
        for key in ("source", "tmpfs_size", "tmpfs_mode", "propagation", "selinux"):
            if getattr(self, key):
                value[key] = getattr(self, key)
        return value

    @classmethod
    def from_field(cls, value: dict[str, Any]) -> "Mount":
        return cls(type=value["type"], target=value["target"], source=value.get("source"),
                   read_only=bool(value.get("read_only")), tmpfs_size=value.get("tmpfs_size"),
                   tmpfs_mode=value.get("tmpfs_mode"), propagation=value.get("propagation"),
                   selinux=value.get("selinux"))

    def engine_mount(self) -> dict[str, Any]:
        """The Engine API's Mounts entry."""
        mount: dict[str, Any] = {"Type": self.type, "Target": self.target, "ReadOnly": self.read_only}
        if self.source:
            mount["Source"] = self.source
        if self.propagation:
            mount["BindOptions"] = {"Propagation": self.propagation}
        tmpfs = {k: v for k, v in (("SizeBytes", self.tmpfs_size), ("Mode", self.tmpfs_mode)) if v}
        if tmpfs:
            mount["TmpfsOptions"] = tmpfs
        return mount

    def bind_text(self) -> str:
        """The Engine API's Binds entry (``source:target:options``), the only form with SELinux relabelling."""
        options = ["ro" if self.read_only else "rw"] + [o for o in (self.selinux, self.propagation) if o]
        return "%s:%s:%s" % (self.source, self.target, ",".join(options))


@dataclass(frozen=True)
class Port:
    """One container port; ``published`` None lets the Engine pick a free host port, ``published_end`` lets it
    pick one in ``published``-``published_end``."""

    target: int
    protocol: str = "tcp"
    published: Optional[int] = None
    published_end: Optional[int] = None
    host_ip: str = ""
    text: str = field(default="", compare=False)  # the item as the user wrote it, for messages

    def as_field(self) -> dict[str, Any]:
        value: dict[str, Any] = {"target": self.target, "protocol": self.protocol, "published": self.published,
                                 "host_ip": self.host_ip}
        if self.published_end is not None:
            value["published_end"] = self.published_end
        return value

    @classmethod
    def from_field(cls, value: dict[str, Any]) -> "Port":
        return cls(target=value["target"], protocol=value.get("protocol", "tcp"), published=value.get("published"),
                   published_end=value.get("published_end"), host_ip=value.get("host_ip") or "")

    @staticmethod
    def sort_key(value: dict[str, Any]) -> tuple[Any, ...]:
        return (value["target"], value["protocol"], value.get("published") or 0, value.get("host_ip") or "")

    @property
    def fixed(self) -> bool:
        """Publishes exactly one host port, known before the container starts."""
        return self.published is not None and self.published_end is None

    def host_port(self) -> Any:
        """The HostPort the Engine is given: a number, a range to pick from, or None (Engine's choice)."""
        if self.published is None:
            return None
        return "%d-%d" % (self.published, self.published_end) if self.published_end else self.published

    def host_side(self) -> str:
        """The host address, port and protocol, as a person writes them (e.g. 127.0.0.1:8080/tcp)."""
        ip = "[%s]" % self.host_ip if ":" in self.host_ip else self.host_ip
        port = self.host_port()
        return "%s%s/%s" % (ip + ":" if ip else "", port if port is not None else "(any)", self.protocol)

    def describe(self) -> str:
        if self.text:
            return repr(self.text)
        host = self.host_side().rsplit("/", 1)[0]
        return "%s->%d/%s" % (host, self.target, self.protocol)


@dataclass
class ServiceSpec:
    name: str
    image: Optional[ImageRef]
    pin: bool = False
    state: str = "started"
    command: Optional[list[str]] = None
    entrypoint: Optional[list[str]] = None
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    ports: list[Port] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    user: Optional[str] = None
    memory: Optional[int] = None
    memory_reservation: Optional[int] = None
    cpus: Optional[float] = None
    healthcheck: Optional[dict[str, Any]] = None
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    restart_policy: str = DEFAULT_RESTART_POLICY
    restart_retries: Optional[int] = None
    log_driver: str = DEFAULT_DRIVER
    log_options: dict[str, str] = field(default_factory=dict)
    wait: str = "auto"
    wait_timeout: int = DEFAULT_WAIT_TIMEOUT
    update_strategy: str = "stop-first"
    rollback: bool = False
    adopt: bool = False
    depends_on: list[str] = field(default_factory=list)
    stack: Optional[str] = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: dict[str, Any], stack: Optional[str] = None) -> "ServiceSpec":
        """Build and validate; raise SpecError listing every problem (nothing has been touched yet)."""
        problems: list[str] = []
        name = params["name"]
        if not _NAME_RE.match(name or ""):
            problems.append("name %r may only hold letters, digits, '_', '.', '-' and must start with a letter "
                            "or digit" % name)
        image = _parse_image(params, problems)
        log_driver, log_options, log_problems = normalise_log_config(params.get("log_driver"),
                                                                     params.get("log_options"))
        problems.extend(log_problems)
        spec = cls(
            name=name,
            image=image,
            pin=params.get("pin", False),
            state=params.get("state") or "started",
            command=_as_argv(params.get("command"), "command", problems),
            entrypoint=_as_argv(params.get("entrypoint"), "entrypoint", problems),
            env=_as_env(params.get("env"), "env", problems),
            secret_env=_as_env(params.get("secret_env"), "secret_env", problems),
            ports=[p for item in params.get("ports") or [] for p in _parse_port(item, problems)],
            mounts=[m for m in (_parse_mount(item, problems) for item in params.get("volumes") or []) if m],
            networks=list(params.get("networks") or []),
            labels=_as_env(params.get("labels"), "labels", problems, names=False),
            user=params.get("user"),
            memory=_parse_memory(params.get("memory"), "memory", problems),
            memory_reservation=_parse_memory(params.get("memory_reservation"), "memory_reservation", problems),
            cpus=params.get("cpus"),
            healthcheck=_parse_healthcheck(params.get("healthcheck"), problems),
            stop_timeout=params.get("stop_timeout", DEFAULT_STOP_TIMEOUT),
            restart_policy=params.get("restart_policy") or DEFAULT_RESTART_POLICY,
            restart_retries=params.get("restart_retries"),
            log_driver=log_driver,
            log_options=log_options,
            wait=params.get("wait") or "auto",
            wait_timeout=params.get("wait_timeout", DEFAULT_WAIT_TIMEOUT),
            update_strategy=params.get("update_strategy") or "stop-first",
            rollback=params.get("rollback", False),
            adopt=params.get("adopt", False),
            depends_on=list(params.get("depends_on") or []),
            stack=stack,
        )
        problems.extend(spec._cross_checks())
        if problems:
            raise SpecError("service %s" % name, problems)
        if spec.restart_policy == "on-failure" and spec.restart_retries is None:
            spec.restart_retries = DEFAULT_RESTART_RETRIES
        return spec

    def _cross_checks(self) -> list[str]:
        problems = []
        if self.restart_retries is not None:
            if self.restart_policy != "on-failure":
                problems.append("restart_retries requires restart_policy=on-failure (got %r)" % self.restart_policy)
            elif self.restart_retries < 1:
                # The Engine reads MaximumRetryCount=0 as "no limit": a crash loop forever.
                problems.append("restart_retries must be 1 or more (got %d): the Engine treats 0 as unlimited "
                                "restarts; use restart_policy=no for none" % self.restart_retries)
        if self.stop_timeout < 0:
            problems.append("stop_timeout must be 0 or more seconds (got %d)" % self.stop_timeout)
        if self.wait_timeout <= 0:
            problems.append("wait_timeout must be a positive number of seconds (got %d)" % self.wait_timeout)
        if self.memory and self.memory_reservation and self.memory_reservation > self.memory:
            problems.append("memory_reservation must not be more than memory (the Engine refuses a soft limit above "
                            "the hard one)")
        if self.cpus is not None and self.cpus <= 0:
            problems.append("cpus must be more than 0 (got %s)" % self.cpus)
        if self.image is None and self.state != "absent" and not self.rollback:
            problems.append("image is required unless state=absent or rollback=true")
        if self.wait == "healthy" and self.healthcheck is not None and self.healthcheck.get("disabled"):
            problems.append("wait=healthy needs a health check, but healthcheck.disable is true")
        problems.extend(duplicate_host_ports([("item", [p]) for p in self.ports]))
        targets = [m.target for m in self.mounts]
        for target in sorted({t for t in targets if targets.count(t) > 1}):
            problems.append("volumes: %s is mounted more than once" % target)
        reserved = sorted(k for k in self.labels if k.startswith(LABEL_PREFIX))
        if reserved:
            problems.append("labels %s use the reserved prefix %r; pick another prefix" % (", ".join(reserved), LABEL_PREFIX))
        overlap = sorted(set(self.env) & set(self.secret_env))
        if overlap:
            problems.append("env and secret_env both set %s; set each variable in one of them" % ", ".join(overlap))
        for name in self.networks:
            if not _NAME_RE.match(name):
                problems.append("networks: %r is not a valid network name" % name)
        return problems


def ports_clash(one: Port, other: Port) -> bool:
    """Both bind the same fixed host port and protocol on overlapping addresses (unspecified means all).

    A port the Engine picks (none given, or a range to pick from) never clashes: the Engine takes a free one.
    """
    if not (one.fixed and other.fixed) or one.published != other.published or one.protocol != other.protocol:
        return False
    anywhere = ("", "0.0.0.0", "::")
    return one.host_ip == other.host_ip or one.host_ip in anywhere or other.host_ip in anywhere


def duplicate_host_ports(owners: list[tuple[str, list[Port]]]) -> list[str]:
    """Problems for every host port two items publish; ``owners`` pairs a label (e.g. a service name) with its ports."""
    items = [(owner, port) for owner, ports in owners for port in ports]
    problems = []
    for index, (owner, port) in enumerate(items):
        for other_owner, other in items[index + 1:]:
            if ports_clash(port, other):
                problems.append("ports: %s %s and %s %s both publish host port %s; give each its own host port, "
                                "or leave the host port out to let the Engine pick one"
                                % (owner, port.describe(), other_owner, other.describe(), port.host_side()))
    return problems


def secret_fingerprint(key: str, value: str) -> str:
    return "sha256:" + hashlib.sha256(("%s=%s" % (key, value)).encode()).hexdigest()[:16]


def _parse_image(params: dict[str, Any], problems: list[str]) -> Optional[ImageRef]:
    text = params.get("image")
    if not text:
        return None
    try:
        ref = parse_image_ref(text)
    except ImageRefError as exc:
        problems.append("image: %s" % exc)
        return None
    if not ref.is_pinned and not params.get("pin"):
        problems.append("image %r is not pinned by digest: give repo@sha256:<digest> (dockhand.containers.image_digest "
                        "resolves a tag once for all hosts) or set pin=true to resolve it on this host" % text)
    return ref


def _as_argv(value: Any, what: str, problems: list[str]) -> Optional[list[str]]:
    if value is None:
        return None
    if isinstance(value, str):
        return ["/bin/sh", "-c", value] if what == "command" and value else [value]
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return [str(v) for v in value]
    problems.append("%s must be a string or a list of strings" % what)
    return None


def _as_env(value: Any, what: str, problems: list[str], names: bool = True) -> dict[str, str]:
    result = {}
    for key, item in (value or {}).items():
        if names and not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", str(key)):
            problems.append("%s: %r is not a valid variable name" % (what, key))
            continue
        if isinstance(item, (dict, list)):
            problems.append("%s.%s must be a string, number or boolean" % (what, key))
            continue
        if isinstance(item, bool) or isinstance(item, float):
            # YAML already turned yes/no/on/off/true into a boolean and 1.10 into 1.1: what the user meant is lost.
            kind = "the boolean %s" % ("true" if item else "false") if isinstance(item, bool) else "the number %r" % item
            problems.append("%s.%s is %s, not text: YAML converts unquoted yes/no/true/false and decimals; quote the "
                            "value as you want it, e.g. %s: \"yes\" or \"1.10\"" % (what, key, kind, key))
            continue
        result[str(key)] = "" if item is None else str(item)
    return result


def _parse_port(item: Any, problems: list[str]) -> list[Port]:
    """One ``ports`` item (docker's ``[ip:][published[-end]:]target[-end][/protocol]`` or a dict) as Ports."""
    if isinstance(item, dict):
        unknown = set(item) - {"target", "published", "host_ip", "protocol"}
        if unknown:
            problems.append("ports: unknown keys %s (use target, published, host_ip, protocol)" % ", ".join(sorted(unknown)))
            return []
        if item.get("target") in (None, ""):
            problems.append("ports: %r needs a target port" % (item,))
            return []
        ip = str(item.get("host_ip") or "")
        given = "" if item.get("published") in (None, "") else str(item["published"])
        host = ("[%s]" % ip if ":" in ip else ip) + ":" if ip else ""
        text = "%s%s%s%s" % (host, given, ":" if host or given else "", item["target"])
        text += "/%s" % item["protocol"] if item.get("protocol") else ""
    elif isinstance(item, (str, int)) and not isinstance(item, bool):
        text = str(item)
    else:
        problems.append("ports: %r must be a string like '8080:80' or a dict" % (item,))
        return []
    protocol = text.rpartition("/")[2] if "/" in text else "tcp"
    if protocol not in ("tcp", "udp", "sctp"):
        problems.append("ports: %r: protocol must be tcp, udp or sctp" % (item,))
        return []
    if split_port is None:
        problems.append("ports: %r cannot be read without the Docker SDK for Python (pip install docker)" % (item,))
        return []
    try:
        internal, external = split_port(text)
    except ValueError as exc:
        problems.append("ports: %r is not [host_ip:][published[-end]:]target[-end][/protocol] (%s)" % (item, exc))
        return []
    ports = []
    for index, target_text in enumerate(internal):
        target = int(target_text.partition("/")[0])
        host_ip: Optional[str] = ""
        published: Optional[str] = None
        if external is not None:
            binding = external[index]
            host_ip, published = binding if isinstance(binding, tuple) else ("", binding)
        first, _sep, last = str(published or "").partition("-")
        numbers = [target] + [int(n) for n in (first, last) if n]
        if any(not 1 <= n <= 65535 for n in numbers):
            problems.append("ports: %r: port numbers must be within 1-65535" % (item,))
            return []
        if last and int(last) < int(first):
            problems.append("ports: %r: the host port range ends before it starts" % (item,))
            return []
        ports.append(Port(target=target, protocol=protocol, published=int(first) if first else None,
                          published_end=int(last) if last else None, host_ip=host_ip or "", text=str(item)))
    return ports


def _mount_options(text: str, options: str, problems: list[str]) -> Optional[dict[str, Any]]:
    """The third part of ``source:target:options`` (comma separated, as docker run -v takes them)."""
    data: dict[str, Any] = {}
    for option in options.split(","):
        if option in ("ro", "rw"):
            data["read_only"] = option == "ro"
        elif option in ("z", "Z"):
            data["selinux"] = option
        elif option in _PROPAGATIONS:
            data["propagation"] = option
        else:
            problems.append("volumes: %r: unknown option %r; use ro or rw, z or Z (SELinux relabelling) and a bind "
                            "propagation (%s)" % (text, option, ", ".join(_PROPAGATIONS)))
            return None
    return data


def _tmpfs_mode(value: Any, problems: list[str]) -> Optional[int]:
    text = str(value).strip()
    text = text[2:] if text.lower().startswith("0o") else text
    if isinstance(value, bool) or not text or any(c not in "01234567" for c in text):
        problems.append("volumes: tmpfs_mode %r is not an octal file mode like \"1777\" (quote it)" % (value,))
        return None
    return int(text, 8)


def _parse_mount(item: Any, problems: list[str]) -> Optional[Mount]:
    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) not in (2, 3):
            problems.append("volumes: %r is not source:target[:options]" % item)
            return None
        data: dict[str, Any] = {"source": parts[0], "target": parts[1]}
        if len(parts) == 3:
            options = _mount_options(item, parts[2], problems)
            if options is None:
                return None
            data.update(options)
        data["type"] = "bind" if parts[0].startswith("/") else "volume"
    elif isinstance(item, dict):
        data = dict(item)
        unknown = set(data) - {"type", "source", "target", "read_only", "driver", "driver_options", "labels",
                               "tmpfs_size", "tmpfs_mode", "propagation", "selinux"}
        if unknown:
            problems.append("volumes: unknown keys %s" % ", ".join(sorted(unknown)))
            return None
        data.setdefault("type", "bind" if str(data.get("source", "")).startswith("/") else "volume")
    else:
        problems.append("volumes: %r must be 'source:target[:options]' or a dict" % (item,))
        return None
    kind, source, target = data["type"], data.get("source"), data.get("target")
    if kind not in ("volume", "bind", "tmpfs"):
        problems.append("volumes: type %r must be volume, bind or tmpfs" % kind)
        return None
    if not isinstance(target, str) or not target.startswith("/"):
        problems.append("volumes: target %r must be an absolute path inside the container" % (target,))
        return None
    if kind == "volume" and not (isinstance(source, str) and _NAME_RE.match(source) and len(source) > 1):
        problems.append("volumes: volume name %r is invalid: use letters, digits, '_', '.', '-', starting with a "
                        "letter or digit, at least 2 characters" % (source,))
        return None
    # Whether a bind source exists is for the Engine's machine to say (docker_host may be remote):
    # the Engine checks it when the container is created, before anything else is touched.
    if kind == "bind" and not (isinstance(source, str) and source.startswith("/")):
        problems.append("volumes: bind source %r must be an absolute path on the Docker host" % (source,))
        return None
    if kind == "tmpfs" and source:
        problems.append("volumes: a tmpfs mount takes no source (got %r)" % source)
        return None
    if kind != "volume" and (data.get("driver") or data.get("driver_options") or data.get("labels")):
        problems.append("volumes: driver, driver_options and labels only apply to type=volume (%s)" % target)
        return None
    if data.get("propagation") and (kind != "bind" or data["propagation"] not in _PROPAGATIONS):
        problems.append("volumes: propagation %r (%s) needs a bind mount and one of %s"
                        % (data["propagation"], target, ", ".join(_PROPAGATIONS)))
        return None
    if data.get("selinux") and (kind == "tmpfs" or data["selinux"] not in ("z", "Z")):
        problems.append("volumes: selinux %r (%s) must be z or Z, on a bind or volume mount" % (data["selinux"], target))
        return None
    if kind != "tmpfs" and (data.get("tmpfs_size") is not None or data.get("tmpfs_mode") is not None):
        problems.append("volumes: tmpfs_size and tmpfs_mode only apply to type=tmpfs (%s)" % target)
        return None
    tmpfs_size = None
    if data.get("tmpfs_size") is not None:
        try:
            tmpfs_size = human_to_bytes(str(data["tmpfs_size"]))
        except ValueError:
            problems.append("volumes: tmpfs_size %r is not a size like 64m" % data["tmpfs_size"])
            return None
    tmpfs_mode = _tmpfs_mode(data["tmpfs_mode"], problems) if data.get("tmpfs_mode") is not None else None
    if data.get("tmpfs_mode") is not None and tmpfs_mode is None:
        return None
    return Mount(
        type=kind, target=target, source=source, read_only=bool(data.get("read_only")),
        driver=data.get("driver"),
        driver_options=tuple(sorted((str(k), str(v)) for k, v in (data.get("driver_options") or {}).items())),
        volume_labels=tuple(sorted((str(k), str(v)) for k, v in (data.get("labels") or {}).items())),
        tmpfs_size=tmpfs_size, tmpfs_mode=tmpfs_mode, propagation=data.get("propagation"),
        selinux=data.get("selinux"),
    )


def _parse_memory(value: Optional[str], what: str, problems: list[str]) -> Optional[int]:
    if value in (None, ""):
        return None
    try:
        amount = human_to_bytes(str(value), isbits=False)
    except ValueError:
        problems.append("%s %r is not a size like 256m or 1g" % (what, value))
        return None
    if amount < 6 * 1024 * 1024:
        problems.append("%s %r is below the Engine's minimum of 6m" % (what, value))
        return None
    return amount


def parse_duration(value: Any, what: str, problems: list[str]) -> Optional[int]:
    """Seconds (number) or Go-style text (1m30s, 500ms) to nanoseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
        if seconds < 0:
            problems.append("%s must not be negative (got %s)" % (what, value))
            return None
        return int(seconds * 10**9)
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return int(float(text) * 10**9)
    if not text or _DURATION_RE.sub("", text):
        problems.append("%s %r is not a duration like 30s, 1m30s or 500ms" % (what, value))
        return None
    return sum(int(float(n) * _DURATION_NS[u]) for n, u in _DURATION_RE.findall(text))


def _parse_healthcheck(value: Optional[dict[str, Any]], problems: list[str]) -> Optional[dict[str, Any]]:
    if not value:
        return None
    if value.get("disable"):
        return {"disabled": True, "test": ["NONE"]}
    test = value.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL", "NONE")):
        problems.append("healthcheck.test must be a shell string or a list starting with CMD or CMD-SHELL")
        return None
    check: dict[str, Any] = {"test": [str(t) for t in test]}
    for key in ("interval", "timeout", "start_period"):
        ns = parse_duration(value.get(key), "healthcheck.%s" % key, problems)
        if ns is not None:
            if ns and ns < 10**6:
                problems.append("healthcheck.%s must be at least 1ms" % key)
            check[key] = ns
    if value.get("retries") is not None:
        if value["retries"] < 0:
            problems.append("healthcheck.retries must be 0 or more")
        check["retries"] = value["retries"]
    return check
