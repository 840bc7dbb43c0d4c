"""After the roll to the broken image: the run failed, the canary (node1) failed its health check and
runs v2 again, node2 and node3 were never touched, haproxy has all three enabled, no request failed
and no request ever reached the broken image."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "support"))

import rolling_lab  # noqa: E402  (found through the path above)


@pytest.fixture(scope="module")
def node(host: Any) -> str:
    return str(host.backend.get_hostname())


def test_the_run_failed_naming_the_rolled_back_canary() -> None:
    run = rolling_lab.read_json("broken-run.json")
    assert run["rc"] != 0
    assert "node1: rolled back:" in run["stdout"]
    assert "node2: not reached" in run["stdout"] and "node3: not reached" in run["stdout"]


def test_every_node_runs_v2(host: Any) -> None:
    container = host.docker(rolling_lab.SERVICE).inspect()
    assert container["Config"]["Image"] == rolling_lab.images()["v2"]["pinned"]
    assert container["State"]["Health"]["Status"] == "healthy"


def test_nodes_after_the_canary_were_never_touched(host: Any, node: str) -> None:
    if node == "node1":
        pytest.skip("node1 is the canary; test_canary_audit_says_rolled_back covers it")
    before = rolling_lab.read_json("before-broken.json")[node]
    container = host.docker(rolling_lab.SERVICE).inspect()
    assert (container["Id"], container["State"]["StartedAt"]) == (before["Id"], before["State"]["StartedAt"])
    last = rolling_lab.audit(host)[-1]
    assert last["result"] == "not_reached"


def test_canary_audit_says_rolled_back(host: Any, node: str) -> None:
    if node != "node1":
        pytest.skip("only node1 was reached")
    last = rolling_lab.audit(host)[-1]
    assert last["result"] == "rolled_back"
    assert "healthy" in last["note"]
    assert [(s["old"], s["new"]) for s in last["services"]] == [(rolling_lab.images()["v2"]["pinned"],) * 2]


def test_locks_are_released(host: Any) -> None:
    assert not host.file("/var/lib/dockhand/deploy.lock").exists


def test_haproxy_has_every_node_enabled() -> None:
    assert rolling_lab.haproxy_servers() == {name: (0, "UP") for name in rolling_lab.NODES}


def test_no_failed_request_and_none_answered_by_the_broken_image() -> None:
    load = rolling_lab.read_json("load.json")
    assert load["failed"] == 0, load["failures"]
    assert "broken" not in load["bodies"]
