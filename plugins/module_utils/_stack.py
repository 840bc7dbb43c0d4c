# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's whole stack: the same per-service converge, in dependency order, after parallel pulls."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ._converge import ConvergeError, Resolver, ServiceResult, converge_service
from ._diff import diff_view
from ._engine import Engine, EngineError
from ._registry import RegistryError
from ._record import LABEL_MANAGED, LABEL_SERVICE, LABEL_STACK
from ._service_spec import DEFAULT_STOP_TIMEOUT, ServiceSpec, SpecError, duplicate_host_ports

SUMMARY_KEYS = ("create", "recreate", "update", "start", "stop", "remove", "unchanged")


CONVERGED, FAILED, NOT_ATTEMPTED = "converged", "failed", "not attempted"


@dataclass
class StackResult:
    name: str
    results: dict[str, ServiceResult] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)
    declared: list[str] = field(default_factory=list)  # every service, in dependency order
    errors: dict[str, str] = field(default_factory=dict)  # service -> why it failed

    def outcome(self, name: str) -> dict[str, Any]:
        """converged (with the service module's keys), failed (with why), or not attempted (with why not)."""
        if name in self.results:
            return dict(self.results[name].as_dict(diff=False), outcome=CONVERGED)
        if name in self.errors:
            return dict(name=name, outcome=FAILED, msg=self.errors[name])
        failed = ", ".join(sorted(self.errors))
        return dict(name=name, outcome=NOT_ATTEMPTED, msg="not attempted: the stack stopped after %s failed" % failed)

    @property
    def changed(self) -> bool:
        return bool(self.pruned) or any(r.changed for r in self.results.values())

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(SUMMARY_KEYS, 0)
        for result in self.results.values():
            for action in result.actions or ["unchanged"]:
                counts[action] += 1
        counts["remove"] += len(self.pruned)
        return counts

    def as_dict(self, diff: bool) -> dict[str, Any]:
        data: dict[str, Any] = dict(
            changed=self.changed, order=self.order, pruned=self.pruned, pulled=self.pulled,
            summary=self.summary(), services={n: self.outcome(n) for n in self.declared or list(self.results)},
        )
        if diff:
            views = {n: diff_view(r.changes, r.before_state, r.after_state) for n, r in self.results.items() if r.changed}
            views.update({n: {"before": {"state": "started"}, "after": {"state": "absent"}} for n in self.pruned})
            data["diff"] = {"before": {n: v["before"] for n, v in views.items()},
                            "after": {n: v["after"] for n, v in views.items()}}
        return data


def services_shape_problem(services: Any) -> Optional[str]:
    """Why ``services`` (as given, before Ansible's own conversion) is not a list of dicts, or None if it is."""
    if services is None:
        return None
    if not isinstance(services, list):
        return "services must be a list of services, each a dict of dockhand.containers.service options (got %s %s)" \
            % (type(services).__name__, _shown(services))
    for index, item in enumerate(services):
        if not isinstance(item, dict):
            return "services[%d] must be a dict of dockhand.containers.service options, e.g. {name: web, image: ...} " \
                   "(got %s %s)" % (index, type(item).__name__, _shown(item))
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def build_specs(stack: str, items: list[dict[str, Any]]) -> list[ServiceSpec]:
    """Validate every service first, so a bad item changes nothing at all."""
    specs, problems = [], []
    if not (stack or "").strip():
        problems.append("name must not be empty: it is the dockhand.stack label that tells this stack's containers "
                        "from others (prune removes by it); give the stack a name, e.g. name: shop")
    for item in items:
        try:
            specs.append(ServiceSpec.from_params(item, stack=stack))
        except SpecError as exc:
            problems.append(str(exc))
    names = [s.name for s in specs]
    problems += ["services: %s is declared more than once" % n for n in sorted({n for n in names if names.count(n) > 1})]
    problems += duplicate_host_ports([("service %s" % s.name, s.ports) for s in specs if s.state != "absent"])
    if problems:
        raise SpecError("stack %s" % stack, problems)
    return dependency_order(stack, specs)


def dependency_order(stack: str, specs: list[ServiceSpec]) -> list[ServiceSpec]:
    """Declared order, moved only as far as depends_on requires; cycles and unknown names are errors."""
    by_name = {s.name: s for s in specs}
    problems = ["service %s depends_on %s, which the stack does not declare" % (s.name, d)
                for s in specs for d in s.depends_on if d not in by_name]
    if problems:
        raise SpecError("stack %s" % stack, problems)
    ordered: list[ServiceSpec] = []
    visiting: list[str] = []

    def visit(spec: ServiceSpec) -> None:
        if spec in ordered:
            return
        if spec.name in visiting:
            cycle = visiting[visiting.index(spec.name):] + [spec.name]
            raise SpecError("stack %s" % stack, ["depends_on forms a cycle: %s" % " -> ".join(cycle)])
        visiting.append(spec.name)
        for dep in spec.depends_on:
            visit(by_name[dep])
        visiting.pop()
        ordered.append(spec)

    for spec in specs:
        visit(spec)
    return ordered


def pull_each(make_engine: Callable[[], Engine], missing: list[str], parallelism: int,
              auth: Optional[dict[str, str]]) -> dict[str, str]:
    """Pull every image in ``missing``, several at once (each worker has its own Engine client); returns the
    images that could not be pulled, with why. One failure does not stop the other pulls."""
    def pull(image: str) -> Optional[str]:
        try:
            make_engine().pull(image, auth)
        except EngineError as exc:
            return str(exc)
        return None

    if not missing:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(missing)))) as pool:
        outcomes = list(pool.map(pull, missing))
    return {image: error for image, error in zip(missing, outcomes) if error is not None}


def pull_missing(engine: Engine, make_engine: Callable[[], Engine], images: list[str], parallelism: int,
                 auth: Optional[dict[str, str]]) -> list[str]:
    """Pull the images the host lacks, several at once; raise naming every image that could not be pulled."""
    missing = sorted({image for image in images if engine.image(image) is None})
    errors = pull_each(make_engine, missing, parallelism, auth)
    if errors:
        raise EngineError("; ".join(errors[image] for image in sorted(errors)))
    return missing


def wanted_images(specs: list[ServiceSpec], resolve: Resolver) -> tuple[dict[str, str], dict[str, str]]:
    """Service -> the digest-pinned image its converge runs (a ``pin`` tag resolved), for every service that runs
    an image; and service -> why its image cannot be had (its tag could not be resolved)."""
    wanted: dict[str, str] = {}
    unready: dict[str, str] = {}
    for spec in specs:
        if spec.image is None or spec.state == "absent" or spec.rollback:
            continue
        try:
            wanted[spec.name] = spec.image.pinned if spec.image.is_pinned else \
                spec.image.with_digest(resolve(spec.image)).pinned
        except (RegistryError, EngineError) as exc:
            unready[spec.name] = "its image %s could not be resolved: %s" % (spec.image, exc)
    return wanted, unready


def dependency_waves(specs: list[ServiceSpec]) -> list[list[ServiceSpec]]:
    """Group services (already in dependency order) so each comes after everything it depends on."""
    level: dict[str, int] = {}
    for spec in specs:
        level[spec.name] = 1 + max((level[dep] for dep in spec.depends_on), default=-1)
    waves: list[list[ServiceSpec]] = [[] for _wave in range(max(level.values(), default=-1) + 1)]
    for spec in specs:
        waves[level[spec.name]].append(spec)
    return waves


def converge_stack(engine: Engine, make_engine: Callable[[], Engine], stack: str, specs: list[ServiceSpec], *,
                   resolve: Resolver, check_mode: bool, prune: bool, parallelism: int,
                   registry_auth: Optional[dict[str, str]]) -> StackResult:
    """Pull what is missing, then converge wave by wave: services of one wave do not depend on each
    other, so up to ``parallelism`` of them converge at once (each with its own Engine client)."""
    result = StackResult(name=stack, declared=[s.name for s in specs])
    unready: dict[str, str] = {}  # service -> why its image cannot be had; it fails without being touched
    if not check_mode:
        wanted, unready = wanted_images(specs, resolve)
        missing = sorted({image for image in wanted.values() if engine.image(image) is None})
        pull_errors = pull_each(make_engine, missing, parallelism, registry_auth)
        result.pulled = [image for image in missing if image not in pull_errors]
        unready.update({name: "its image could not be pulled: %s" % pull_errors[image]
                        for name, image in wanted.items() if image in pull_errors})
        # Made once here, so services converging side by side never race to create the same network.
        for network in sorted({n for s in specs if s.state != "absent" for n in s.networks}):
            if engine.network(network) is None:
                engine.create_network(network, {LABEL_MANAGED: "true"})

    workers = threading.local()  # one Engine client per worker thread, reused across services

    def converge_one(spec: ServiceSpec, own_client: bool) -> Any:
        """The service's result, or the error a person should read (anything else is a bug and propagates)."""
        if spec.name in unready:
            return ConvergeError(unready[spec.name])
        client = engine
        if own_client:
            client = getattr(workers, "engine", None) or make_engine()
            workers.engine = client
        try:
            return converge_service(client, spec, resolve=resolve, check_mode=check_mode, registry_auth=registry_auth)
        except (ConvergeError, EngineError, RegistryError) as exc:
            return exc

    for wave in dependency_waves(specs):
        outcomes: list[tuple[ServiceSpec, Any]] = []
        if len(wave) == 1 or parallelism == 1:
            for spec in wave:
                outcomes.append((spec, converge_one(spec, own_client=False)))
                if isinstance(outcomes[-1][1], Exception):
                    break
        else:
            with ThreadPoolExecutor(max_workers=min(parallelism, len(wave))) as pool:
                futures = [(spec, pool.submit(converge_one, spec, True)) for spec in wave]
                outcomes = [(spec, future.result()) for spec, future in futures]
        failures = []
        for spec, outcome in outcomes:
            if isinstance(outcome, Exception):
                failures.append("service %s: %s" % (spec.name, outcome))
                result.errors[spec.name] = str(outcome)
            else:
                result.results[spec.name] = outcome
                result.order.append(spec.name)
        if failures:
            raise StackError(result, "; ".join(failures))
    if prune:
        declared = {s.name for s in specs}
        for container in engine.containers_with_label("%s=%s" % (LABEL_STACK, stack)):
            name = container["Config"]["Labels"].get(LABEL_SERVICE) or container["Name"].lstrip("/")
            if name in declared or container["Name"].lstrip("/") != name:
                continue
            if not check_mode:
                engine.stop(container["Id"], _stop_timeout(container))
                engine.remove(container["Id"])
            result.pruned.append(name)
    return result


def _stop_timeout(container: dict[str, Any]) -> int:
    """The container's own stop timeout (as the service set it), like docker stop without -t."""
    timeout = (container.get("Config") or {}).get("StopTimeout")
    return DEFAULT_STOP_TIMEOUT if timeout is None else int(timeout)


class StackError(Exception):
    """A failure part-way through; ``partial`` tells what had been done."""

    def __init__(self, partial: StackResult, message: str) -> None:
        super().__init__(message)
        self.partial = partial
