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
from ._logging import normalise_log_config

LABEL_PREFIX = "dockhand."
LABEL_MANAGED = "dockhand.managed"
LABEL_SERVICE = "dockhand.service"
LABEL_STACK = "dockhand.stack"
LABEL_SPEC = "dockhand.spec"
LABEL_SPEC_HASH = "dockhand.spec-hash"
LABEL_DIGEST = "dockhand.digest"
LABEL_PREVIOUS_IMAGE = "dockhand.previous-image"
LABEL_PREVIOUS_SPEC = "dockhand.previous-spec"
LABEL_ROLLED_BACK = "dockhand.rolled-back"

RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
STATES = ("present", "started", "stopped", "absent")
SECRET_MASK = "********"
DEFAULT_RESTART_POLICY = "on-failure"
DEFAULT_RESTART_RETRIES = 5

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_PORT_RE = re.compile(r"^(?:(?:(?P<ip>[0-9.]+|\[[0-9a-fA-F:]+\]):)?(?P<published>\d+):)?(?P<target>\d+)(?:/(?P<proto>\w+))?$")


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
        cpus=dict(type="float"),
        healthcheck=dict(type="dict", options=dict(
            test=dict(type="raw"),
            interval=dict(type="raw"),
            timeout=dict(type="raw"),
            retries=dict(type="int"),
            start_period=dict(type="raw"),
            disable=dict(type="bool", default=False),
        )),
        stop_timeout=dict(type="int", default=10),
        restart_policy=dict(type="str", default=DEFAULT_RESTART_POLICY, choices=list(RESTART_POLICIES)),
        restart_retries=dict(type="int"),
        log_driver=dict(type="str", default="json-file"),
        log_options=dict(type="dict", default={}),
        wait=dict(type="str", default="auto", choices=["auto", "none", "running", "healthy"]),
        wait_timeout=dict(type="int", default=60),
        update_strategy=dict(type="str", default="stop-first", choices=["stop-first", "start-first"]),
        rollback=dict(type="bool", default=False),
        adopt=dict(type="bool", default=False),
        depends_on=dict(type="list", elements="str", default=[]),
    )


class SpecError(ValueError):
    """One or more invalid options; the message lists every problem with its fix."""

    def __init__(self, name: str, problems: list[str]) -> None:
        super().__init__("service %s: %s" % (name, "; ".join(problems)))
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

    def as_field(self) -> dict[str, Any]:
        value: dict[str, Any] = {"type": self.type, "target": self.target, "read_only": self.read_only}
        if self.source:
            value["source"] = self.source
        if self.tmpfs_size:
            value["tmpfs_size"] = self.tmpfs_size
        return value


@dataclass(frozen=True)
class Port:
    target: int
    protocol: str = "tcp"
    published: Optional[int] = None
    host_ip: str = ""

    def as_field(self) -> str:
        host = "%s:" % self.host_ip if self.host_ip else ""
        published = "%s%s:" % (host, self.published) if self.published else host
        return "%s%d/%s" % (published, self.target, self.protocol)


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
    cpus: Optional[float] = None
    healthcheck: Optional[dict[str, Any]] = None
    stop_timeout: int = 10
    restart_policy: str = DEFAULT_RESTART_POLICY
    restart_retries: Optional[int] = None
    log_driver: str = "json-file"
    log_options: dict[str, str] = field(default_factory=dict)
    wait: str = "auto"
    wait_timeout: int = 60
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
            ports=[p for p in (_parse_port(item, problems) for item in params.get("ports") or []) if p],
            mounts=[m for m in (_parse_mount(item, problems) for item in params.get("volumes") or []) if m],
            networks=list(params.get("networks") or []),
            labels={str(k): str(v) for k, v in (params.get("labels") or {}).items()},
            user=params.get("user"),
            memory=_parse_memory(params.get("memory"), problems),
            cpus=params.get("cpus"),
            healthcheck=_parse_healthcheck(params.get("healthcheck"), problems),
            stop_timeout=params.get("stop_timeout", 10),
            restart_policy=params.get("restart_policy") or DEFAULT_RESTART_POLICY,
            restart_retries=params.get("restart_retries"),
            log_driver=log_driver,
            log_options=log_options,
            wait=params.get("wait") or "auto",
            wait_timeout=params.get("wait_timeout", 60),
            update_strategy=params.get("update_strategy") or "stop-first",
            rollback=params.get("rollback", False),
            adopt=params.get("adopt", False),
            depends_on=list(params.get("depends_on") or []),
            stack=stack,
        )
        problems.extend(spec._cross_checks())
        if problems:
            raise SpecError(name, problems)
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
        if self.cpus is not None and self.cpus <= 0:
            problems.append("cpus must be more than 0 (got %s)" % self.cpus)
        if self.image is None and self.state != "absent" and not self.rollback:
            problems.append("image is required unless state=absent or rollback=true")
        if self.wait == "healthy" and self.healthcheck is not None and self.healthcheck.get("disabled"):
            problems.append("wait=healthy needs a health check, but healthcheck.disable is true")
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

    # Fields compared between desired and running; values are plain JSON data.
    def fields(self) -> dict[str, Any]:
        image = self.image
        return {
            "image": (image.pinned if image.digest else str(image)) if image else None,
            "command": self.command,
            "entrypoint": self.entrypoint,
            "env": dict(sorted(self.env.items())),
            "secret_env": {k: _secret_fingerprint(k, v) for k, v in sorted(self.secret_env.items())},
            "ports": sorted(p.as_field() for p in self.ports),
            "volumes": sorted((m.as_field() for m in self.mounts), key=lambda m: m["target"]),
            "networks": sorted(self.networks),
            "labels": dict(sorted(self.labels.items())),
            "user": self.user,
            "healthcheck": self.healthcheck,
            "stop_timeout": self.stop_timeout,
            "log_config": {"driver": self.log_driver, "options": dict(sorted(self.log_options.items()))},
            "restart_policy": {"name": self.restart_policy, "retries": self.restart_retries or 0},
            "memory": self.memory,
            "cpus": self.cpus,
        }

    def port_conflicts(self, other_ports: list[str]) -> list[str]:
        """Fixed host ports this spec publishes that ``other_ports`` (field form) also publishes."""
        mine = {_host_side(p.as_field()) for p in self.ports if p.published}
        theirs = {_host_side(p) for p in other_ports}
        return sorted(h for h in mine & theirs if h)


# Fields changed on the live container (docker update) rather than by replacing it: a restart policy
# change must not restart the service.
IN_PLACE_FIELDS = ("restart_policy",)
SECRET_FIELDS = ("secret_env",)


def _host_side(port_field: str) -> str:
    head, _sep, proto = port_field.partition("/")
    parts = head.rsplit(":", 2)
    if len(parts) < 2:
        return ""
    return "%s/%s" % (parts[-2], proto)


def _secret_fingerprint(key: str, value: str) -> str:
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


def _as_env(value: Any, what: str, problems: list[str]) -> dict[str, str]:
    result = {}
    for key, item in (value or {}).items():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", str(key)):
            problems.append("%s: %r is not a valid variable name" % (what, key))
            continue
        if isinstance(item, (dict, list)):
            problems.append("%s.%s must be a string, number or boolean" % (what, key))
            continue
        result[str(key)] = ("true" if item else "false") if isinstance(item, bool) else str(item)
    return result


def _parse_port(item: Any, problems: list[str]) -> Optional[Port]:
    if isinstance(item, int):
        item = str(item)
    if isinstance(item, str):
        match = _PORT_RE.match(item)
        if not match:
            problems.append("ports: %r is not [host_ip:][published:]target[/protocol]" % item)
            return None
        data: dict[str, Any] = {"target": match["target"], "published": match["published"],
                                "host_ip": (match["ip"] or "").strip("[]"), "protocol": match["proto"] or "tcp"}
    elif isinstance(item, dict):
        data = dict(item)
        unknown = set(data) - {"target", "published", "host_ip", "protocol"}
        if unknown:
            problems.append("ports: unknown keys %s (use target, published, host_ip, protocol)" % ", ".join(sorted(unknown)))
            return None
    else:
        problems.append("ports: %r must be a string like '8080:80' or a dict" % (item,))
        return None
    try:
        target = int(data["target"])
        published = int(data["published"]) if data.get("published") not in (None, "") else None
    except (KeyError, TypeError, ValueError):
        problems.append("ports: %r needs a numeric target (and published) port" % (item,))
        return None
    protocol = data.get("protocol") or "tcp"
    for number in (target, published):
        if number is not None and not 1 <= number <= 65535:
            problems.append("ports: %r: %d is outside 1-65535" % (item, number))
            return None
    if protocol not in ("tcp", "udp", "sctp"):
        problems.append("ports: %r: protocol must be tcp, udp or sctp" % (item,))
        return None
    return Port(target=target, protocol=protocol, published=published, host_ip=data.get("host_ip") or "")


def _parse_mount(item: Any, problems: list[str]) -> Optional[Mount]:
    if isinstance(item, str):
        parts = item.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            problems.append("volumes: %r is not source:target[:ro|rw]" % item)
            return None
        data: dict[str, Any] = {"source": parts[0], "target": parts[1], "read_only": len(parts) == 3 and parts[2] == "ro"}
        data["type"] = "bind" if parts[0].startswith("/") else "volume"
    elif isinstance(item, dict):
        data = dict(item)
        unknown = set(data) - {"type", "source", "target", "read_only", "driver", "driver_options", "labels", "tmpfs_size"}
        if unknown:
            problems.append("volumes: unknown keys %s" % ", ".join(sorted(unknown)))
            return None
        data.setdefault("type", "bind" if str(data.get("source", "")).startswith("/") else "volume")
    else:
        problems.append("volumes: %r must be 'source:target[:ro]' or a dict" % (item,))
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
    tmpfs_size = None
    if data.get("tmpfs_size") is not None:
        try:
            tmpfs_size = human_to_bytes(str(data["tmpfs_size"]))
        except ValueError:
            problems.append("volumes: tmpfs_size %r is not a size like 64m" % data["tmpfs_size"])
            return None
    return Mount(
        type=kind, target=target, source=source, read_only=bool(data.get("read_only")),
        driver=data.get("driver"),
        driver_options=tuple(sorted((str(k), str(v)) for k, v in (data.get("driver_options") or {}).items())),
        volume_labels=tuple(sorted((str(k), str(v)) for k, v in (data.get("labels") or {}).items())),
        tmpfs_size=tmpfs_size,
    )


def _parse_memory(value: Optional[str], problems: list[str]) -> Optional[int]:
    if value in (None, ""):
        return None
    try:
        amount = human_to_bytes(str(value), isbits=False)
    except ValueError:
        problems.append("memory %r is not a size like 256m or 1g" % value)
        return None
    if amount < 6 * 1024 * 1024:
        problems.append("memory %r is below the Engine's minimum of 6m" % value)
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


def engine_args(fields: dict[str, Any], env_values: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """Map spec fields to Engine API arguments: container config, host config kwargs, networks.

    ``env_values`` holds the real values of env and secret_env (the fields only fingerprint secrets).
    """
    exposed: list[Any] = []
    bindings: dict[str, list[Any]] = {}
    for text in fields["ports"]:
        head, _sep, proto = text.partition("/")
        parts = head.rsplit(":", 2)
        key = "%s/%s" % (parts[-1], proto)
        exposed.append((int(parts[-1]), proto) if proto != "tcp" else int(parts[-1]))
        if len(parts) >= 2:
            published = int(parts[-2]) if parts[-2] else None
            host_ip = parts[-3] if len(parts) == 3 else ""
            binding = (host_ip, published) if published else (host_ip,)
            bindings.setdefault(key, []).append(binding if host_ip else published)
    mounts = []
    for volume in fields["volumes"]:
        mount: dict[str, Any] = {"Type": volume["type"], "Target": volume["target"], "ReadOnly": volume["read_only"]}
        if volume.get("source"):
            mount["Source"] = volume["source"]
        if volume.get("tmpfs_size"):
            mount["TmpfsOptions"] = {"SizeBytes": volume["tmpfs_size"]}
        mounts.append(mount)
    health = fields["healthcheck"]
    config: dict[str, Any] = dict(
        command=fields["command"],
        entrypoint=fields["entrypoint"],
        environment=["%s=%s" % item for item in sorted(env_values.items())] or None,
        labels=labels,
        user=fields["user"],
        stop_timeout=fields["stop_timeout"],
        ports=exposed or None,
        healthcheck={k: v for k, v in health.items() if k != "disabled"} if health else None,
    )
    policy = fields["restart_policy"]
    host: dict[str, Any] = dict(
        port_bindings=bindings or None,
        mounts=mounts or None,
        restart_policy={"Name": policy["name"], "MaximumRetryCount": policy["retries"]}
        if policy["name"] == "on-failure" else {"Name": policy["name"]},
        log_config={"type": fields["log_config"]["driver"], "config": fields["log_config"]["options"]},
        mem_limit=fields["memory"],
        nano_cpus=int(fields["cpus"] * 1e9) if fields["cpus"] else None,
    )
    return dict(config=config, host=host, networks=list(fields["networks"]))
