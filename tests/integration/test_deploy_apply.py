"""dockhand.containers.deploy_apply against node2's engine: the converge, the smoke check and the audit entry.

The module runs on this machine with ``docker_host`` set to node2's engine, so its audit log is a file of this test
(``tmp_path``) and its smoke URL is node2's published port as this machine reaches it; what it converged is read
from node2's engine itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import LabState, Node
from module_runner import clean_engine, run_module

pytestmark = pytest.mark.lab
NODE_INDEX = 1

STACK = "da"
NAME = "da-web"
PORT = 18475  # published on node2; the rolling tests' app uses 8080


@pytest.fixture
def node(lab: LabState) -> Iterator[tuple[Node, docker.DockerClient]]:
    target = lab.node("node2")
    with clean_engine(target, NAME) as client:
        yield target, client


def apply_args(lab: LabState, target: Node, audit: Path, image: str, before: list[dict[str, Any]],
               path: str = "/health", **more: Any) -> dict[str, Any]:
    return dict(name=STACK, services=[dict(name=NAME, image=image, wait="healthy", ports=["%d:8080" % PORT])],
                smoke_url="http://%s:%d%s" % (target.ip, PORT, path), smoke_retries=1, smoke_delay=0.2,
                audit_path=str(audit), run_id="run-a", user="tester", playbook="deploy", before=before,
                docker_host=target.docker_host, registry_username=lab.registry_username,
                registry_password=lab.registry_password, **more)


def entries(audit: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []


def running_image(client: docker.DockerClient) -> str:
    return str(client.api.inspect_container(NAME)["Config"]["Image"])


def test_an_update_is_converged_smoke_checked_and_recorded_by_the_same_run(
        lab: LabState, node: tuple[Node, docker.DockerClient], tmp_path: Path) -> None:
    target, client = node
    audit = tmp_path / "audit.jsonl"
    v1, v2 = lab.images["v1"].pinned, lab.images["v2"].pinned

    made = run_module("deploy_apply", apply_args(lab, target, audit, v1, before=[])).assert_ok()
    assert made["changed"] and made["smoke"]["status"] == 200 and made["smoke"]["attempts"] >= 1
    assert running_image(client) == v1
    assert client.api.inspect_container(NAME)["State"]["Health"]["Status"] == "healthy"
    [entry] = entries(audit)
    assert entry["result"] == "updated" and entry["run_id"] == "run-a" and entry["user"] == "tester"
    assert entry["services"] == [dict(name=NAME, old=None, new=v1)]

    before = [dict(name=NAME, image=v1)]
    checked = run_module("deploy_apply", apply_args(lab, target, audit, v2, before=before), check=True).assert_ok()
    assert checked["changed"] and checked["smoke"] is None
    assert checked["audit"]["services"] == [dict(name=NAME, old=v1, new=v2)]
    assert running_image(client) == v1 and len(entries(audit)) == 1, "check mode changed the host or wrote an entry"

    updated = run_module("deploy_apply", apply_args(lab, target, audit, v2, before=before)).assert_ok()
    assert updated["after"] == [dict(name=NAME, image=v2)] and running_image(client) == v2
    assert [e["services"] for e in entries(audit)][-1] == [dict(name=NAME, old=v1, new=v2)]


def test_a_failed_smoke_check_or_health_check_writes_no_entry(
        lab: LabState, node: tuple[Node, docker.DockerClient], tmp_path: Path) -> None:
    target, client = node
    audit = tmp_path / "audit.jsonl"
    v1, v2 = lab.images["v1"].pinned, lab.images["v2"].pinned
    run_module("deploy_apply", apply_args(lab, target, audit, v1, before=[])).assert_ok()
    recorded = entries(audit)

    smoked = run_module("deploy_apply", apply_args(lab, target, audit, v2, before=[dict(name=NAME, image=v1)],
                                                   path="/no-such-page")).assert_failed()
    assert smoked["smoke_failed"] is True and "/no-such-page answered HTTP 404, expected HTTP 200" in smoked.msg
    assert running_image(client) == v2, "the converge itself succeeded; the caller rolls it back"
    assert entries(audit) == recorded

    broken = run_module("deploy_apply", apply_args(lab, target, audit, lab.images["broken"].pinned,
                                                   before=[dict(name=NAME, image=v2)])).assert_failed()
    assert not broken.get("smoke_failed") and NAME in broken.msg
    assert running_image(client) == v2, "the failed replacement was not put back"
    assert entries(audit) == recorded


def test_bad_settings_are_refused_before_anything_changes(
        lab: LabState, node: tuple[Node, docker.DockerClient], tmp_path: Path) -> None:
    target, client = node
    audit = tmp_path / "audit.jsonl"
    args = apply_args(lab, target, audit, lab.images["v1"].pinned, before=[])
    refused = run_module("deploy_apply", dict(args, smoke_url="127.0.0.1:8080/health")).assert_failed()
    assert "smoke_url must be an http:// or https:// URL" in refused.msg
    refused = run_module("deploy_apply", {k: v for k, v in args.items() if k != "user"}).assert_failed()
    assert "audit_path" in refused.msg and "user" in refused.msg
    assert NAME not in [c.name for c in client.containers.list(all=True)] and not audit.exists()
