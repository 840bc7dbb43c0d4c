"""Scenario: the job updating a service is killed (SIGKILL to its whole process group) at every Engine event of
the update, then the same job runs again. Both update strategies, a healthy and a broken new image.

After each re-run, read from lab node1's engine: exactly one container carries the service's name or its swap
names (nothing parked, no next, no lock), it is the right one (the new image if it is healthy, else the very
container that ran before), it runs, its named volume still holds the data, and the re-run said so (a retry of
a broken update fails and puts the old container back). Kill points are the node engine's own events.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from conftest import LabState, Node
from module_runner import exec_text, poll, remove_service_objects, run_module
from swap_jobs import KillAt, names_on_engine

pytestmark = [pytest.mark.lab, pytest.mark.slow]
NODE_INDEX = 0

FAST_HEALTH = {"test": ["CMD", "/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"],
               "interval": "300ms", "timeout": "2s", "retries": 2, "start_period": "0s"}
# (strategy, new image, shard, shards): a variant with many kill points is split over services that run side by
# side, each taking every shards-th kill point.
VARIANTS = [("stop-first", "v2", 0, 1), ("start-first", "v2", 0, 1), ("stop-first", "broken", 0, 2),
            ("stop-first", "broken", 1, 2), ("start-first", "broken", 0, 1)]


@pytest.fixture
def services(engine: Any) -> Iterator[list[str]]:
    names = ["sw-crash-%s-%s-%d" % (strategy.split("-", maxsplit=1)[0], image, shard)
             for strategy, image, shard, _shards in VARIANTS]
    for name in names:
        remove_service_objects(engine, name)
    yield names
    for name in names:
        remove_service_objects(engine, name)


def crash_every_event(lab: LabState, node: Node, client: Any, name: str, strategy: str, image: str, shard: int,
                      shards: int) -> list[str]:
    """Run the variant; return what went wrong (empty when every kill point recovered as promised)."""
    def args(pinned: str) -> dict[str, Any]:
        return dict(name=name, docker_host=node.docker_host, image=pinned, volumes=[f"{name}-data:/data"],
                    healthcheck=FAST_HEALTH, update_strategy=strategy, stop_timeout=2, wait_timeout=30,
                    registry_username=lab.registry_username, registry_password=lab.registry_password)

    healthy = image != "broken"
    current, target = lab.images["v1"].pinned, lab.images[image].pinned
    run_module("service", args(current)).assert_ok()
    exec_text(client.containers.get(name), "echo kept-by-%s > /data/marker" % name)
    original_id = client.containers.get(name).id

    recorder = KillAt(client, name)
    recorder.run(args(target))
    points = len(recorder.seen)
    assert points >= 7, "an update makes at least 7 swap events, saw %s" % recorder.seen
    if healthy:
        current, target = target, current

    problems: list[str] = []
    started = time.monotonic()
    for nth in range(1 + shard, points + 1, shards):
        killer = KillAt(client, name, KillAt.nth(nth))
        killer.run(args(target))
        where = "%s/%s killed at event %d (%s)" % (strategy, image, nth, killer.killed_at or "after the run ended")
        rerun = run_module("service", args(target))
        names = names_on_engine(client, name)
        if names != {name}:
            problems.append("%s: containers after the re-run: %s" % (where, sorted(names)))
            remove_service_objects(client, name + "-dockhand")  # go on from a clean state for the next point
            continue
        container = client.containers.get(name)
        attrs = container.attrs
        if not attrs["State"]["Running"]:
            problems.append("%s: %s is not running" % (where, name))
        if healthy:
            if rerun.failed or rerun["container_id"] != container.id or attrs["Config"]["Image"] != target:
                problems.append("%s: re-run should run %s, reported %s; engine runs %s"
                                % (where, target, rerun.data, attrs["Config"]["Image"]))
            elif attrs["State"].get("Health", {}).get("Status") != "healthy":
                problems.append("%s: the re-run reported success but %s is %s" % (where, name, attrs["State"]["Health"]))
            current, target = target, current
        else:
            if not rerun.failed or not ("put back" in rerun.msg or "not touched" in rerun.msg):
                problems.append("%s: a retry of a broken update must fail and put v1 back, it returned %s"
                                % (where, rerun.data))
            if container.id != original_id or attrs["Config"]["Image"] != current:
                problems.append("%s: %s is not the container that ran before (%s)"
                                % (where, name, attrs["Config"]["Image"]))
            poll("%s healthy again" % name,
                 lambda: client.containers.get(name).attrs["State"].get("Health", {}).get("Status") == "healthy")
        if attrs["State"]["Running"] and exec_text(container, "cat /data/marker").strip() != "kept-by-%s" % name:
            problems.append("%s: the named volume lost its data" % where)
    print("%s/%s: %d kill points %s in %.0f s" % (strategy, image, points, recorder.seen, time.monotonic() - started))
    return problems


def test_a_job_killed_at_every_engine_event_of_an_update_is_finished_or_undone_by_its_rerun(
        lab: LabState, node: Node, engine: Any, services: list[str]) -> None:
    # The variants work on services of their own side by side; each kills its own jobs only.
    with ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
        futures = [pool.submit(crash_every_event, lab, node, node.client(), name, *variant)
                   for name, variant in zip(services, VARIANTS)]
        problems = [problem for future in futures for problem in future.result()]
    assert not problems, "\n".join(problems)
