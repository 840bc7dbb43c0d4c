"""After the roll from v1 to v2 under load: every node runs v2's digest, haproxy has all three
enabled and up, the load generator saw both versions and no failed request."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "support"))

import rolling_lab  # noqa: E402  (found through the path above)


def test_node_runs_v2_by_digest_and_is_healthy(host: Any) -> None:
    container = host.docker(rolling_lab.SERVICE).inspect()
    assert container["Config"]["Image"] == rolling_lab.images()["v2"]["pinned"]
    assert container["State"]["Health"]["Status"] == "healthy"


def test_audit_log_records_v1_to_v2_and_the_lock_is_gone(host: Any) -> None:
    images = rolling_lab.images()
    last = rolling_lab.audit(host)[-1]
    assert (last["result"], last["playbook"]) == ("updated", "deploy")
    assert last["services"] == [{"name": "demo-web", "old": images["v1"]["pinned"], "new": images["v2"]["pinned"]}]
    assert not host.file("/var/lib/dockhand/deploy.lock").exists


def test_haproxy_has_every_node_enabled_and_up() -> None:
    assert rolling_lab.haproxy_servers() == {name: (0, "UP") for name in rolling_lab.NODES}


def test_load_saw_v1_then_v2_and_no_failed_request() -> None:
    load = rolling_lab.read_json("load.json")
    assert load["failed"] == 0, load["failures"]
    assert load["bodies"]["v1"] > 0 and load["bodies"]["v2"] > 0
    assert load["last_seen"]["v1"] < load["last_seen"]["v2"]
