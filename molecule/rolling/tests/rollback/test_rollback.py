"""After rollback.yml: every node runs v1 again (the deployment recorded before v2), each audit log
says so, haproxy has all three enabled and up, and the load generator still saw no failed request."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "support"))

import rolling_lab  # noqa: E402  (found through the path above)


def test_node_runs_v1_by_digest_and_is_healthy(host: Any) -> None:
    container = host.docker(rolling_lab.SERVICE).inspect()
    assert container["Config"]["Image"] == rolling_lab.images()["v1"]["pinned"]
    assert container["State"]["Health"]["Status"] == "healthy"


def test_audit_log_records_the_rollback(host: Any) -> None:
    images = rolling_lab.images()
    last = rolling_lab.audit(host)[-1]
    assert (last["result"], last["playbook"]) == ("updated", "rollback")
    assert last["services"] == [{"name": "demo-web", "old": images["v2"]["pinned"], "new": images["v1"]["pinned"]}]


def test_haproxy_has_every_node_enabled_and_up() -> None:
    assert rolling_lab.haproxy_servers() == {name: (0, "UP") for name in rolling_lab.NODES}


def test_load_saw_v1_again_and_no_failed_request() -> None:
    load = rolling_lab.read_json("load.json")
    assert load["failed"] == 0, load["failures"]
    assert load["last_seen"]["v1"] > load["first_seen"]["v2"]
