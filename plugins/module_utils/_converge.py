# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one service on one Engine: plan (pure), then apply (only the safe order).

``service`` calls :func:`converge_service` once; ``stack`` calls it per service. Everything a
destructive step needs (image, volumes, networks, a created replacement container) is in place
before an existing container is stopped, and a failed swap puts the previous container back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

from ._container_config import desired_fields, engine_args, observed_fields, read_record
from ._diff import Change, compare, diff_view
from ._engine import Engine, EngineError
from ._image_ref import ImageRef, parse_image_ref
from ._lock import LockError, ServiceLock
from ._record import LABEL_MANAGED, LABEL_SPEC, UPDATES_DIR, Record, record_labels, updates_archive
from ._service_spec import Mount, Port, ServiceSpec, ports_clash
from ._swap import NEXT_SUFFIX, PREVIOUS_SUFFIX, Found, State, classify, readiness, settle, swap
from ._volume import VolumeError, VolumeSpec, create_missing_volumes, refuse_changed_volumes

__all__ = ["NEXT_SUFFIX", "PREVIOUS_SUFFIX"]  # the swap's names live in _swap; kept importable from here

Resolver = Callable[[ImageRef], str]


class ConvergeError(Exception):
    """A failure while converging; the host is left as the message says."""


@dataclass
class ServiceResult:
    name: str
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    before_state: Optional[str] = None
    after_state: Optional[str] = None
    image: Optional[str] = None
    digest: Optional[str] = None
    previous_image: Optional[str] = None
    container_id: Optional[str] = None
    health: Optional[str] = None
    ports: list[dict[str, Any]] = field(default_factory=list)  # as published, with the host ports the Engine chose
    warnings: list[str] = field(default_factory=list)

    def as_dict(self, diff: bool) -> dict[str, Any]:
        result: dict[str, Any] = dict(
            name=self.name, changed=self.changed, actions=self.actions, image=self.image, digest=self.digest,
            previous_image=self.previous_image, container_id=self.container_id, state=self.after_state,
            health=self.health, changed_fields=[c.field for c in self.changes], ports=self.ports,
        )
        if diff:
            result["diff"] = diff_view(self.changes, self.before_state, self.after_state)
        return result


def published_ports(container: dict[str, Any]) -> list[dict[str, Any]]:
    """The host ports a running container publishes, including those the Engine picked."""
    found = []
    for key, bindings in sorted(((container.get("NetworkSettings") or {}).get("Ports") or {}).items()):
        target, _sep, protocol = key.partition("/")
        for binding in bindings or []:
            found.append({"target": int(target), "protocol": protocol, "host_ip": binding.get("HostIp") or "",
                          "published": int(binding["HostPort"]) if binding.get("HostPort") else None})
    return found


def container_state(container: Optional[dict[str, Any]]) -> str:
    if container is None:
        return "absent"
    return "started" if container["State"].get("Running") else "stopped"


@dataclass
class Plan:
    """What a run will do; computed without touching the Engine's state."""

    spec: ServiceSpec
    existing: Optional[dict[str, Any]]
    record: Optional[Record] = None  # what the collection recorded on the existing container
    desired: dict[str, Any] = field(default_factory=dict)  # empty when the service is to be removed
    env_values: dict[str, str] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    action: str = "none"  # none | create | update | recreate | remove
    start: bool = False
    stop: bool = False
    previous_image: Optional[str] = None
    previous_spec: Optional[dict[str, Any]] = None


def plan_service(engine: Engine, spec: ServiceSpec, resolve: Resolver) -> Plan:
    existing = engine.container(spec.name)
    record = read_record(engine, existing) if existing else None
    plan = Plan(spec=spec, existing=existing, record=record)
    observed = observed_fields(existing, record) if existing and record else None
    if existing is not None and record is None and not spec.adopt:
        raise ConvergeError(
            "container %s exists but is not managed by dockhand.containers (it has no %s label): remove or rename "
            "it, or set adopt=true to replace it (its named volumes are kept)" % (spec.name, LABEL_SPEC))
    if spec.state == "absent":
        plan.action = "remove" if existing else "none"
        return plan
    if spec.rollback:
        _plan_rollback(plan, existing, observed)
    else:
        if spec.image is None:
            raise ConvergeError("image is required unless state=absent or rollback=true")
        image = spec.image if spec.image.is_pinned else spec.image.with_digest(resolve(spec.image))
        plan.desired = dict(desired_fields(spec), image=image.pinned)
        plan.env_values = dict(spec.env, **spec.secret_env)
    running = existing is not None and existing["State"].get("Running")
    if existing is None:
        plan.action = "create"
        plan.changes = compare(plan.desired, {})
    else:
        plan.changes = compare(plan.desired, observed or {}, existing if observed else None)
        if plan.changes:
            plan.action = "update" if all(c.in_place for c in plan.changes) else "recreate"
    if plan.action in ("create", "recreate"):
        if record is not None and observed is not None and plan.action == "recreate" and not spec.rollback:
            plan.previous_spec = record.applied
            plan.previous_image = observed["image"] if observed["image"] != plan.desired.get("image") \
                else record.previous_image
        plan.start = spec.state == "started" or (spec.state == "present" and bool(running))
    else:
        plan.start = spec.state == "started" and not running
        plan.stop = spec.state == "stopped" and bool(running)
        plan.previous_image = record.previous_image if record else None
    return plan


def _plan_rollback(plan: Plan, existing: Optional[dict[str, Any]], observed: Optional[dict[str, Any]]) -> None:
    record = plan.record
    if existing is None or observed is None or record is None or record.previous_spec is None:
        raise ConvergeError("rollback=true: service %s has no previous deployment recorded on this host "
                            "(nothing to roll back to)" % plan.spec.name)
    current_env = dict(item.split("=", 1) for item in existing["Config"].get("Env") or [] if "=" in item)
    if record.rolled_back:
        # Already the result of a rollback: asking again must not flip back to the newer deployment.
        plan.desired = record.applied
        plan.env_values = {k: current_env.get(k, "") for k in list(plan.desired["env"]) + list(plan.desired["secret_env"])}
        plan.previous_spec = record.previous_spec
        plan.previous_image = record.previous_image
        return
    previous = record.previous_spec
    plan.desired = previous
    plan.env_values = {k: current_env.get(k, "") for k in list(previous["env"]) + list(previous["secret_env"])}
    plan.env_values.update(previous["env"])
    plan.previous_spec = record.applied
    plan.previous_image = observed["image"]


def recover_interrupted_swap(engine: Engine, spec: ServiceSpec) -> list[str]:
    """Finish or undo what a killed run left mid-swap (see _swap and docs/swap.md); returns what was done."""
    settled = settle(engine, spec.name, spec.stop_timeout)
    if not settled.steps:
        return []
    steps = ", ".join(str(s) for s in settled.steps)
    if settled.kept_new:
        return ["service %s: finished an interrupted update (state %s), its new container had proven ready: %s"
                % (spec.name, settled.state.value, steps)]
    return ["service %s: recovered its container from an interrupted update (state %s), the new one had not proven "
            "ready: %s" % (spec.name, settled.state.value, steps)]


def lock_wait(spec: ServiceSpec) -> int:
    """How long a run waits for another run's lock on the same service: long enough for that run's swap
    (stop the old container, wait for the new one, and undo: images are pulled before the lock is taken)."""
    return spec.wait_timeout + 2 * spec.stop_timeout + 15


def lock_lease(spec: ServiceSpec) -> int:
    """After how long a lock held from another machine counts as abandoned (pulls included)."""
    return 2 * (spec.wait_timeout + spec.stop_timeout) + 900


def converge_service(engine: Engine, spec: ServiceSpec, *, resolve: Resolver, check_mode: bool,
                     registry_auth: Optional[dict[str, str]] = None) -> ServiceResult:
    """Converge one service; a run that changes anything holds the service's Engine lock, settles any swap an
    earlier run left, and plans again (another run may have changed the service while this one waited)."""
    preview = _converge_service(engine, spec, resolve, True, registry_auth)  # refusals come before any change
    if check_mode:
        return preview
    lock = ServiceLock(engine, spec.name, wait=lock_wait(spec), lease=lock_lease(spec), image=preview.image)
    if not preview.changed and classify(Found.look(engine, spec.name)) == State.STEADY:
        lock.clear_if_dead()
        return preview  # nothing to change: no lock taken, so an idempotent run leaves no trace on the Engine

    if preview.image and preview.changed and spec.state != "absent":
        _pull_missing(engine, preview.image, registry_auth)  # before the lock: another run need not wait for a pull
    try:
        with lock:
            recovered = recover_interrupted_swap(engine, spec)
            result = _converge_service(engine, spec, resolve, check_mode, registry_auth)
    except LockError as exc:
        raise ConvergeError(str(exc))
    if recovered:
        result.changed = True
        result.warnings[:0] = recovered
    return result


def _converge_service(engine: Engine, spec: ServiceSpec, resolve: Resolver, check_mode: bool,
                      registry_auth: Optional[dict[str, str]]) -> ServiceResult:
    plan = plan_service(engine, spec, resolve)
    result = ServiceResult(name=spec.name, before_state=container_state(plan.existing), changes=plan.changes)
    result.previous_image = plan.previous_image
    if plan.desired:
        result.image = plan.desired["image"]
        result.digest = parse_image_ref(plan.desired["image"]).digest
    result.after_state = _predicted_state(plan)
    result.actions = _actions(plan)
    result.changed = bool(result.actions)
    _check_start_first(engine, plan)
    _check_volumes(engine, plan)
    _check_rollback_image(engine, plan)
    result.warnings.extend(_policy_warnings(engine, plan))
    if check_mode or not result.changed:
        if plan.action == "none":
            _describe(plan.existing, result, applied=False)
        return result
    if plan.action in ("create", "recreate"):
        created_volumes = _prepare(engine, plan, registry_auth)
        container_id = _replace(engine, plan, created_volumes)
    elif plan.existing is not None:
        container_id = plan.existing["Id"]
        if plan.action == "remove":
            engine.stop(container_id, spec.stop_timeout)
            engine.remove(container_id)
            return result
        if plan.action == "update" and plan.record is not None:
            try:
                _update_in_place(engine, plan.existing, plan.record, plan.changes)
            except EngineError as exc:
                # The running container cannot take it (e.g. a memory limit below what it uses): a new one can.
                _recreate_instead(plan, plan.record, str(exc))
                result.changes, result.actions = plan.changes, _actions(plan)
                container_id = _replace(engine, plan, _prepare(engine, plan, registry_auth))
                _describe(engine.container(container_id), result, applied=True)
                return result
        if plan.stop:
            engine.stop(container_id, spec.stop_timeout)
        if plan.start:
            engine.start(container_id)
            _wait(engine, container_id, plan)
    _describe(engine.container(container_id), result, applied=True)
    return result


def _recreate_instead(plan: Plan, record: Record, why: str) -> None:
    """Turn a refused in-place update into a replacement carrying the same changes (and saying why)."""
    running = bool((plan.existing or {}).get("State", {}).get("Running"))
    plan.action = "recreate"
    plan.changes = [replace(c, in_place=False, update=None, why_recreate="the running container refused the update (%s)"
                            % why) for c in plan.changes]
    plan.previous_spec = record.applied
    plan.previous_image = record.previous_image
    plan.start = plan.spec.state == "started" or (plan.spec.state == "present" and running)
    plan.stop = False


def _update_in_place(engine: Engine, container: dict[str, Any], record: Record, changes: list[Change]) -> None:
    """``docker update`` the running container, then record what changed, so the collection's own update is not
    reported as drift (labels cannot change on a container; the record's updates file can)."""
    body: dict[str, Any] = {}
    for change in changes:
        body.update(change.update or {})
    engine.update(container["Id"], body)
    engine.write_archive(container["Id"], UPDATES_DIR, updates_archive(record, {c.field: c.after for c in changes}))


def _policy_warnings(engine: Engine, plan: Plan) -> list[str]:
    # Said when the container is made or changed, not on every run that leaves it alone.
    if not plan.changes or not plan.desired or plan.desired["restart_policy"]["name"] != "always":
        return []
    check = plan.desired["healthcheck"]
    if check and not check.get("disabled"):
        return []
    image = engine.image(plan.desired["image"]) if not check else None
    image_test = ((image or {}).get("Config") or {}).get("Healthcheck", {}) or {}
    if image_test.get("Test") and image_test["Test"][0] != "NONE":
        return []
    return ["service %s: restart_policy=always without a health check restarts a broken service forever and never "
            "reports it; prefer restart_policy=on-failure with restart_retries, or add a healthcheck" % plan.spec.name]


def _predicted_state(plan: Plan) -> str:
    if plan.action == "remove":
        return "absent"
    if plan.start:
        return "started"
    if plan.stop or plan.action in ("create", "recreate"):
        return "stopped"
    return container_state(plan.existing)


def _actions(plan: Plan) -> list[str]:
    actions = []
    if plan.action != "none":
        actions.append(plan.action)
    if plan.action in ("none", "update"):
        if plan.start:
            actions.append("start")
        if plan.stop:
            actions.append("stop")
    return actions


def _check_start_first(engine: Engine, plan: Plan) -> None:
    if plan.spec.update_strategy != "start-first" or plan.action != "recreate" or not plan.existing:
        return
    if not plan.existing["State"].get("Running") or not plan.desired or plan.record is None:
        return
    new = [Port.from_field(p) for p in plan.desired["ports"]]
    old = [Port.from_field(p) for p in plan.record.applied.get("ports", [])]
    clash = sorted({n.host_side() for n in new for o in old if ports_clash(n, o)})
    if clash:
        raise ConvergeError(
            "update_strategy=start-first cannot replace %s: the new container would publish host port(s) %s that the "
            "running one holds; use update_strategy=stop-first or drop the fixed host port" % (plan.spec.name, ", ".join(clash)))


def _prepare(engine: Engine, plan: Plan, registry_auth: Optional[dict[str, str]]) -> list[str]:
    """Everything the new container needs, before anything existing is touched; returns volumes it created."""
    _pull_missing(engine, plan.desired["image"], registry_auth)
    # A plain named volume is left for the Engine to create with the container, so settings it refuses
    # (a missing bind source) leave nothing behind; one with a driver, options or labels is made here.
    mounts = [] if plan.spec.rollback else plan.spec.mounts
    try:
        created = create_missing_volumes(engine, _volume_specs(mounts, with_labels=True))
    except VolumeError as exc:
        raise ConvergeError(str(exc))
    for network in plan.desired["networks"]:
        if engine.network(network) is None:
            engine.create_network(network, {LABEL_MANAGED: "true"})
    return created


def _check_rollback_image(engine: Engine, plan: Plan) -> None:
    """A rollback never pulls: its image must still be on the host."""
    if plan.spec.rollback and plan.action in ("create", "recreate") and engine.image(plan.desired["image"]) is None:
        raise ConvergeError("rollback of %s needs image %s, which is no longer on this host; deploy it by digest "
                            "instead" % (plan.spec.name, plan.desired["image"]))


def _pull_missing(engine: Engine, image: str, registry_auth: Optional[dict[str, str]]) -> None:
    if engine.image(image) is None:
        try:
            engine.pull(image, registry_auth)
        except EngineError as exc:
            raise ConvergeError("image %s could not be pulled (%s): check that the digest exists in the registry "
                                "(dockhand.containers.image_digest verifies it) and that this host can log in to it"
                                % (image, exc))


def _check_volumes(engine: Engine, plan: Plan) -> None:
    """Refuse (never recreate) an existing volume whose driver or options differ from the spec."""
    if plan.spec.rollback or plan.action == "remove":
        return
    try:
        refuse_changed_volumes(engine, _volume_specs(plan.spec.mounts, with_labels=False))
    except VolumeError as exc:
        raise ConvergeError(str(exc))


def _volume_specs(mounts: list[Mount], with_labels: bool) -> list[VolumeSpec]:
    """The named volumes whose settings the service declares (driver, options, or with_labels also labels)."""
    return [VolumeSpec(name=m.source, driver=m.driver or "local", driver_options=dict(m.driver_options),
                       labels=dict(m.volume_labels))
            for m in mounts
            if m.type == "volume" and m.source and (m.driver or m.driver_options or (with_labels and m.volume_labels))]


def _labels(plan: Plan) -> dict[str, str]:
    labels = dict(plan.desired["labels"])
    labels.update(record_labels(plan.desired, service=plan.spec.name, stack=plan.spec.stack,
                                digest=parse_image_ref(plan.desired["image"]).digest,
                                previous_image=plan.previous_image, previous_spec=plan.previous_spec,
                                rolled_back=plan.spec.rollback))
    return labels


def _create(engine: Engine, plan: Plan, name: str, swap_labels: dict[str, str]) -> str:
    args = engine_args(plan.desired, plan.env_values, dict(_labels(plan), **swap_labels))
    networks = args["networks"]
    networking = engine.networking_config(networks[0], [plan.spec.name]) if networks else None
    container_id = engine.create_container(name, plan.desired["image"], args["config"],
                                           engine.host_config(**args["host"]), networking)
    for network in networks[1:]:
        engine.connect(network, container_id, aliases=[plan.spec.name])
    return container_id


def _create_or_undo(engine: Engine, plan: Plan, name: str, swap_labels: dict[str, str],
                    created_volumes: list[str]) -> str:
    """Create the container; if the Engine refuses it, remove the (empty) volumes this run created."""
    try:
        return _create(engine, plan, name, swap_labels)
    except EngineError as exc:
        for volume in created_volumes:
            engine.remove_volume(volume)
        text = str(exc)
        if "bind source path does not exist" in text:
            raise ConvergeError("volumes: a bind source does not exist on the Docker host; create it there first (e.g. "
                                "with ansible.builtin.file) or use a named volume (%s)" % text)
        raise


def _replace(engine: Engine, plan: Plan, created_volumes: list[str]) -> str:
    """Create, or replace the existing container, through the swap's states; a failure is undone at once."""
    spec, old = plan.spec, plan.existing
    try:
        return swap(engine, spec.name, lambda name, labels: _create_or_undo(engine, plan, name, labels, created_volumes),
                    old, start=plan.start, wait=spec.wait, start_first=spec.update_strategy == "start-first",
                    stop_timeout=spec.stop_timeout, wait_ready=lambda container_id: _wait(engine, container_id, plan))
    except EngineError as exc:
        try:
            undone = settle(engine, spec.name, spec.stop_timeout, undo=True)
        except EngineError as undo_exc:
            raise ConvergeError("%s failed (%s), and undoing it failed too (%s): the next run of this service "
                                "finishes the undo" % ("creating " + spec.name if old is None else "update of " + spec.name,
                                                       exc, undo_exc))
        if not undone.steps:
            raise  # refused before anything existed under the swap's names: the Engine's words say it all
        if old is None:
            raise ConvergeError("new container of %s was removed again (its named volumes are kept): %s"
                                % (spec.name, exc))
        if undone.state == State.PREPARED:
            raise ConvergeError("%s update of %s failed; the running container was not touched: %s"
                                % (spec.update_strategy, spec.name, exc))
        old_running = bool(old["State"].get("Running"))
        raise ConvergeError("update of %s failed and the previous container was put back%s: %s"
                            % (spec.name, " and started" if old_running else "", exc))


def _wait(engine: Engine, container_id: str, plan: Plan) -> None:
    if plan.spec.wait == "none":
        return
    want = readiness(engine.container(container_id) or {}, plan.spec.wait)
    engine.wait_for(container_id, want, plan.spec.wait_timeout)


def _describe(container: Optional[dict[str, Any]], result: ServiceResult, applied: bool) -> None:
    if container is None:
        return
    result.container_id = container["Id"]
    if applied:
        result.after_state = container_state(container)
    result.health = (container["State"].get("Health") or {}).get("Status")
    result.ports = published_ports(container)
    result.image = result.image or container["Config"].get("Image")
    image = parse_image_ref(result.image) if result.image else None
    result.digest = result.digest or (image.digest if image else None)
