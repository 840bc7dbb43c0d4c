# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's whole stack: the same per-service converge, in dependency order, after parallel pulls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ._converge import ConvergeError, Resolver, ServiceResult, converge_service
from ._diff import diff_view
from ._engine import Engine, EngineError
from ._registry import RegistryError
from ._service_spec import LABEL_SERVICE, LABEL_STACK, ServiceSpec, SpecError

SUMMARY_KEYS = ("create", "recreate", "update", "start", "stop", "remove", "unchanged")


@dataclass
class StackResult:
    name: str
    results: dict[str, ServiceResult] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)

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
            summary=self.summary(), services={n: r.as_dict(diff=False) for n, r in self.results.items()},
        )
        if diff:
            views = {n: diff_view(r.changes, r.before_state, r.after_state) for n, r in self.results.items() if r.changed}
            views.update({n: {"before": {"state": "started"}, "after": {"state": "absent"}} for n in self.pruned})
            data["diff"] = {"before": {n: v["before"] for n, v in views.items()},
                            "after": {n: v["after"] for n, v in views.items()}}
        return data


def build_specs(stack: str, items: list[dict[str, Any]]) -> list[ServiceSpec]:
    """Validate every service first, so a bad item changes nothing at all."""
    specs, problems = [], []
    for item in items:
        try:
            specs.append(ServiceSpec.from_params(item, stack=stack))
        except SpecError as exc:
            problems.append(str(exc))
    names = [s.name for s in specs]
    problems += ["services: %s is declared more than once" % n for n in sorted({n for n in names if names.count(n) > 1})]
    if problems:
        raise SpecError(stack, problems)
    return dependency_order(stack, specs)


def dependency_order(stack: str, specs: list[ServiceSpec]) -> list[ServiceSpec]:
    """Declared order, moved only as far as depends_on requires; cycles and unknown names are errors."""
    by_name = {s.name: s for s in specs}
    problems = ["service %s depends_on %s, which the stack does not declare" % (s.name, d)
                for s in specs for d in s.depends_on if d not in by_name]
    if problems:
        raise SpecError(stack, problems)
    ordered: list[ServiceSpec] = []
    visiting: list[str] = []

    def visit(spec: ServiceSpec) -> None:
        if spec in ordered:
            return
        if spec.name in visiting:
            cycle = visiting[visiting.index(spec.name):] + [spec.name]
            raise SpecError(stack, ["depends_on forms a cycle: %s" % " -> ".join(cycle)])
        visiting.append(spec.name)
        for dep in spec.depends_on:
            visit(by_name[dep])
        visiting.pop()
        ordered.append(spec)

    for spec in specs:
        visit(spec)
    return ordered


def pull_missing(engine: Engine, make_engine: Callable[[], Engine], images: list[str], parallelism: int,
                 auth: Optional[dict[str, str]]) -> list[str]:
    """Pull the images the host lacks, several at once (each worker has its own Engine client)."""
    missing = sorted({image for image in images if engine.image(image) is None})
    if not missing:
        return []

    def pull(image: str) -> None:
        make_engine().pull(image, auth)

    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(missing)))) as pool:
        list(pool.map(pull, missing))
    return missing


def converge_stack(engine: Engine, make_engine: Callable[[], Engine], stack: str, specs: list[ServiceSpec], *,
                   resolve: Resolver, check_mode: bool, prune: bool, parallelism: int,
                   registry_auth: Optional[dict[str, str]]) -> StackResult:
    result = StackResult(name=stack)
    if not check_mode:
        wanted = [s.image.pinned if s.image.is_pinned else s.image.with_digest(resolve(s.image)).pinned
                  for s in specs if s.image is not None and s.state != "absent" and not s.rollback]
        result.pulled = pull_missing(engine, make_engine, wanted, parallelism, registry_auth)
    for spec in specs:
        try:
            result.results[spec.name] = converge_service(engine, spec, resolve=resolve, check_mode=check_mode,
                                                         registry_auth=registry_auth)
        except (ConvergeError, EngineError, RegistryError) as exc:
            raise StackError(result, "service %s: %s" % (spec.name, exc))
        result.order.append(spec.name)
    if prune:
        declared = {s.name for s in specs}
        for container in engine.containers_with_label("%s=%s" % (LABEL_STACK, stack)):
            name = container["Config"]["Labels"].get(LABEL_SERVICE) or container["Name"].lstrip("/")
            if name in declared or container["Name"].lstrip("/") != name:
                continue
            if not check_mode:
                engine.stop(container["Id"], 10)
                engine.remove(container["Id"])
            result.pruned.append(name)
    return result


class StackError(Exception):
    """A failure part-way through; ``partial`` tells what had been done."""

    def __init__(self, partial: StackResult, message: str) -> None:
        super().__init__(message)
        self.partial = partial
