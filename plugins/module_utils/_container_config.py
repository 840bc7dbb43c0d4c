# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per container setting, in one table: its desired value, how it reaches the Engine when a container is
created, how it is observed on a running container, and whether (and how) ``docker update`` changes it.

A setting without ``observe`` is create-time only: the record the collection wrote is its truth. A
setting with ``update`` changes on the running container; ``update`` returns the Engine API body, or
the reason the running container cannot take that value (the only reason such a change recreates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from ._engine import Engine
from ._record import UPDATES_PATH, Record, parse_updates
from ._record import read_record as record_from_labels
from ._service_spec import Mount, Port, ServiceSpec, secret_fingerprint

UpdateBody = dict[str, Any]


@dataclass
class EngineArgs:
    """Arguments of one container create: ``config`` for create_container, ``host`` for create_host_config."""

    env_values: dict[str, str] = field(default_factory=dict)  # real values of env and secret_env
    config: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    networks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Setting:
    name: str
    desired: Callable[[ServiceSpec], Any]
    create: Callable[[Any, EngineArgs], None]
    observe: Optional[Callable[[dict[str, Any]], Any]] = None
    update: Optional[Callable[[Any, dict[str, Any]], Union[UpdateBody, str]]] = None


def _config(key: str) -> Callable[[Any, EngineArgs], None]:
    def put(value: Any, args: EngineArgs) -> None:
        args.config[key] = value
    return put


def _host(key: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[Any, EngineArgs], None]:
    def put(value: Any, args: EngineArgs) -> None:
        args.host[key] = convert(value) if value is not None else None
    return put


def _image(value: Any, args: EngineArgs) -> None:
    """The image is create_container's own argument, not part of the config."""


def _environment(value: Any, args: EngineArgs) -> None:
    # env holds values, secret_env only fingerprints: both are written from the real values.
    names = sorted(set(value or {}) | {item.split("=", 1)[0] for item in args.config.get("environment") or []})
    args.config["environment"] = ["%s=%s" % (k, args.env_values.get(k, "")) for k in names] or None


def _ports(value: Any, args: EngineArgs) -> None:
    exposed: list[Any] = []
    bindings: dict[str, list[Any]] = {}
    for port in (Port.from_field(item) for item in value):
        key = "%d/%s" % (port.target, port.protocol)
        exposed.append(port.target if port.protocol == "tcp" else (port.target, port.protocol))
        # No host port: published all the same, on a port the Engine picks (as docker run -p 9001 does).
        host_port = port.host_port()
        bindings.setdefault(key, []).append((port.host_ip, host_port) if port.host_ip else host_port)
    args.config["ports"] = sorted(set(exposed), key=str) or None
    args.host["port_bindings"] = bindings or None


def _volumes(value: Any, args: EngineArgs) -> None:
    mounts, binds = [], []
    for mount in (Mount.from_field(item) for item in value):
        if mount.selinux:
            # SELinux relabelling exists only in the -v form (Binds); the Mounts API has no equivalent.
            binds.append(mount.bind_text())
        else:
            mounts.append(mount.engine_mount())
    args.host["mounts"] = mounts or None
    args.host["binds"] = binds or None


def _healthcheck(value: Any, args: EngineArgs) -> None:
    args.config["healthcheck"] = {k: v for k, v in value.items() if k != "disabled"} if value else None


def _log_config(value: Any, args: EngineArgs) -> None:
    args.host["log_config"] = {"type": value["driver"], "config": value["options"]}


def _restart_policy_engine(value: dict[str, Any]) -> dict[str, Any]:
    if value["name"] == "on-failure":
        return {"Name": value["name"], "MaximumRetryCount": value["retries"]}
    return {"Name": value["name"], "MaximumRetryCount": 0}


def _observe_restart_policy(container: dict[str, Any]) -> dict[str, Any]:
    policy = (container.get("HostConfig") or {}).get("RestartPolicy") or {}
    return {"name": policy.get("Name") or "no", "retries": policy.get("MaximumRetryCount") or 0}


def _update_restart_policy(value: Any, container: dict[str, Any]) -> Union[UpdateBody, str]:
    return {"RestartPolicy": _restart_policy_engine(value)}


def _observe_memory(container: dict[str, Any]) -> Optional[int]:
    return (container.get("HostConfig") or {}).get("Memory") or None


def _update_memory(value: Any, container: dict[str, Any]) -> Union[UpdateBody, str]:
    if value is None:
        return "the Engine cannot remove a memory limit from a running container"
    body: UpdateBody = {"Memory": value}
    if ((container.get("HostConfig") or {}).get("MemorySwap") or 0) > 0:
        # What a new container gets when only memory is set (swap = memory): keeps the Engine's rule
        # that the swap limit is at least the memory limit.
        body["MemorySwap"] = 2 * value
    return body


def _observe_memory_reservation(container: dict[str, Any]) -> Optional[int]:
    return (container.get("HostConfig") or {}).get("MemoryReservation") or None


def _update_memory_reservation(value: Any, container: dict[str, Any]) -> Union[UpdateBody, str]:
    if value is None:
        return "the Engine cannot remove a memory reservation from a running container"
    return {"MemoryReservation": value}


def _observe_cpus(container: dict[str, Any]) -> Optional[float]:
    nano = (container.get("HostConfig") or {}).get("NanoCpus") or 0
    return nano / 1e9 if nano else None


def _update_cpus(value: Any, container: dict[str, Any]) -> Union[UpdateBody, str]:
    if value is None:
        return "the Engine cannot remove a CPU limit from a running container"
    host = container.get("HostConfig") or {}
    if host.get("CpuQuota") or host.get("CpuPeriod"):
        return "the running container has a CPU quota, which the Engine cannot swap for a cpus limit in place"
    return {"NanoCpus": _nano_cpus(value)}


def _nano_cpus(value: float) -> int:
    return int(round(value * 1e9))


def _image_of(spec: ServiceSpec) -> Optional[str]:
    image = spec.image
    return (image.pinned if image.digest else str(image)) if image else None


SETTINGS: tuple[Setting, ...] = (
    Setting("image", _image_of, _image, observe=lambda c: (c.get("Config") or {}).get("Image")),
    Setting("command", lambda s: s.command, _config("command")),
    Setting("entrypoint", lambda s: s.entrypoint, _config("entrypoint")),
    Setting("env", lambda s: dict(sorted(s.env.items())), _environment),
    Setting("secret_env", lambda s: {k: secret_fingerprint(k, v) for k, v in sorted(s.secret_env.items())},
            _environment),
    Setting("ports", lambda s: sorted((p.as_field() for p in s.ports), key=Port.sort_key), _ports),
    Setting("volumes", lambda s: sorted((m.as_field() for m in s.mounts), key=lambda m: m["target"]), _volumes),
    Setting("networks", lambda s: sorted(s.networks), lambda v, a: setattr(a, "networks", list(v))),
    Setting("labels", lambda s: dict(sorted(s.labels.items())), _config("labels")),
    Setting("user", lambda s: s.user, _config("user")),
    Setting("healthcheck", lambda s: s.healthcheck, _healthcheck),
    Setting("stop_timeout", lambda s: s.stop_timeout, _config("stop_timeout")),
    Setting("log_config", lambda s: {"driver": s.log_driver, "options": dict(sorted(s.log_options.items()))},
            _log_config),
    Setting("restart_policy", lambda s: {"name": s.restart_policy, "retries": s.restart_retries or 0},
            _host("restart_policy", _restart_policy_engine), observe=_observe_restart_policy,
            update=_update_restart_policy),
    Setting("memory", lambda s: s.memory, _host("mem_limit"), observe=_observe_memory, update=_update_memory),
    Setting("memory_reservation", lambda s: s.memory_reservation, _host("mem_reservation"),
            observe=_observe_memory_reservation, update=_update_memory_reservation),
    Setting("cpus", lambda s: s.cpus, _host("nano_cpus", _nano_cpus), observe=_observe_cpus, update=_update_cpus),
)
BY_NAME = {s.name: s for s in SETTINGS}


def desired_fields(spec: ServiceSpec) -> dict[str, Any]:
    """The spec as plain JSON data, one entry per setting: what is recorded and compared."""
    return {s.name: s.desired(spec) for s in SETTINGS}


def observed_fields(container: dict[str, Any], record: Record) -> dict[str, Any]:
    """What a managed container runs with: what the collection applied, overlaid with what the Engine reports."""
    observed = record.applied
    for setting in SETTINGS:
        if setting.observe is not None:
            observed[setting.name] = setting.observe(container)
    return observed


def live_differs(container: dict[str, Any], record: Record) -> bool:
    """Whether a setting the Engine reports live differs from the labels (then the updates file matters)."""
    return any(s.observe is not None and s.name != "image" and s.observe(container) != record.spec.get(s.name)
               for s in SETTINGS)


def in_place_update(name: str, value: Any, container: dict[str, Any]) -> Union[UpdateBody, str, None]:
    """Engine body to change ``name`` to ``value`` on the running ``container``; a reason when it cannot;
    None when the setting is create-time only."""
    setting = BY_NAME.get(name)
    if setting is None or setting.update is None:
        return None
    return setting.update(value, container)


def engine_args(fields: dict[str, Any], env_values: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """Map recorded fields to one container create: ``config`` for create_container, ``host`` for
    create_host_config, ``networks``; ``labels`` are all the container's labels."""
    args = EngineArgs(env_values=env_values)
    for setting in SETTINGS:
        if setting.name in fields:
            setting.create(fields[setting.name], args)
    args.config["labels"] = labels
    return dict(config=args.config, host=args.host, networks=args.networks)


def read_record(engine: Engine, container: dict[str, Any]) -> Optional[Record]:
    """The container's record; the in-place updates file is read only when a live setting differs from the labels."""
    record = record_from_labels(container)
    if record is None or not live_differs(container, record):
        return record
    archive = engine.read_archive(container["Id"], UPDATES_PATH)
    return record_from_labels(container, parse_updates(archive) if archive else None)
