from __future__ import annotations

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._service_spec import ServiceSpec, SpecError
from ansible_collections.dockhand.containers.plugins.module_utils._stack import dependency_order, dependency_waves


def spec(name: str, *deps: str) -> ServiceSpec:
    return ServiceSpec(name=name, image=None, depends_on=list(deps))


def names(specs: list[ServiceSpec]) -> list[str]:
    return [s.name for s in specs]


def test_declared_order_is_kept_when_no_dependency_says_otherwise() -> None:
    assert names(dependency_order("s", [spec("a"), spec("b"), spec("c")])) == ["a", "b", "c"]


def test_dependencies_come_first() -> None:
    ordered = dependency_order("s", [spec("web", "api"), spec("api", "db"), spec("db"), spec("cron", "db")])
    assert names(ordered) == ["db", "api", "web", "cron"]


def test_cycle_is_named() -> None:
    with pytest.raises(SpecError, match="cycle: a -> b -> a"):
        dependency_order("s", [spec("a", "b"), spec("b", "a")])


def test_unknown_dependency_is_named() -> None:
    with pytest.raises(SpecError, match="web depends_on db, which the stack does not declare"):
        dependency_order("s", [spec("web", "db")])


def test_waves_put_each_service_after_all_it_depends_on() -> None:
    ordered = dependency_order("s", [spec("web", "api"), spec("api", "db"), spec("db"), spec("cron", "db"),
                                     spec("metrics")])
    assert [names(wave) for wave in dependency_waves(ordered)] == [["db", "metrics"], ["api", "cron"], ["web"]]


def test_no_services_no_waves() -> None:
    assert dependency_waves([]) == []
