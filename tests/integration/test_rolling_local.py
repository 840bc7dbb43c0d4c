"""Scenario: the rolling playbooks (dockhand.containers.deploy, status) on this machine's engine, as an
AWX survey or extra vars drive them: bad variables are refused before any host is touched, survey
strings work, a held deploy lock refuses a second deploy, a stale one is broken on request, the lock of a
controller killed mid-run is taken over by the next run, and each host's audit log records who changed what.
Assertions read the engine, the lock file and the log."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import docker
import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "playbooks" / "deploy.yml"
STATUS = REPO / "playbooks" / "status.yml"
STACK = "ro-local"
SERVICE = "ro-local-web"
VOLUME = "ro-local-data"
pytestmark = pytest.mark.lab


def remove_stack(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, ignore_removed=True, filters={"label": f"dockhand.stack={STACK}"}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"name": VOLUME}):
        volume.remove(force=True)


@pytest.fixture
def local_engine(lab: Any) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=lab.local_docker_host)
    remove_stack(client)
    yield client
    remove_stack(client)
    client.close()


@pytest.fixture
def stack_vars(lab: Any, tmp_path: Path) -> dict[str, Any]:
    """Everything as strings where a survey would give strings."""
    return {
        "deploy_stack_name": STACK,
        "deploy_services": [{"name": SERVICE, "image": lab.images["v1"].tagged, "volumes": [f"{VOLUME}:/data"],
                             "restart_policy": "on-failure", "restart_retries": 2, "wait": "healthy"}],
        "deploy_registry_username": lab.registry_username,
        "deploy_registry_password": lab.registry_password,
        "rolling_update_lock_path": str(tmp_path / "lock" / "deploy.lock"),
        "rolling_update_audit_path": str(tmp_path / "log" / "audit.jsonl"),
    }


def audit(variables: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(variables["rolling_update_audit_path"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("bad, named", [
    ({"rolling_update_lb": "nginx"}, "rolling_update_lb"),
    ({"rolling_update_serial": "one"}, "rolling_update_serial"),
    ({"deploy_prune": "maybe"}, "deploy_prune"),
    ({"deploy_services": {"name": "x"}}, "deploy_services"),
])
def test_bad_variables_are_refused_before_any_host_is_touched(run_playbook: Any, local_engine: docker.DockerClient,
                                                              stack_vars: dict[str, Any], bad: dict[str, Any],
                                                              named: str) -> None:
    result = run_playbook(DEPLOY, extra_vars={**stack_vars, **bad}).assert_failed()
    assert named in result.stdout + result.stderr, result.describe()
    assert not Path(stack_vars["rolling_update_lock_path"]).exists()
    assert audit(stack_vars) == []
    assert local_engine.containers.list(all=True, ignore_removed=True, filters={"label": f"dockhand.stack={STACK}"}) == []
    assert [r.action for r in result.results if r.status == "changed"] == []


def test_survey_strings_deploy_audit_and_a_rerun_changes_nothing(lab: Any, run_playbook: Any,
                                                                 local_engine: docker.DockerClient,
                                                                 stack_vars: dict[str, Any]) -> None:
    survey = {**stack_vars, "rolling_update_serial": "1", "rolling_update_max_fail_percentage": "30",
              "deploy_prune": "true", "rolling_update_break_lock": "false", "rolling_update_pause": "0",
              "awx_job_id": "4711", "awx_user_name": "survey-user"}
    run_playbook(DEPLOY, extra_vars=survey).assert_ok()

    v1 = lab.images["v1"]
    container = local_engine.containers.get(SERVICE)
    assert container.attrs["Config"]["Image"] == v1.pinned
    assert container.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    assert not Path(stack_vars["rolling_update_lock_path"]).exists(), "the lock outlived the run"
    [entry] = audit(stack_vars)
    assert (entry["result"], entry["user"], entry["awx_job_id"]) == ("updated", "survey-user", "4711")
    assert entry["services"] == [{"name": SERVICE, "old": None, "new": v1.pinned}]

    # "30%" of one host is a batch of one; nothing changes, so nothing is logged either.
    run_playbook(DEPLOY, extra_vars={**survey, "rolling_update_serial": "30%"}).assert_unchanged()
    assert local_engine.containers.get(SERVICE).id == container.id
    assert len(audit(stack_vars)) == 1

    # Asked to, an unchanged host is logged too (the log's one change), with what runs there as its engine shows it.
    run_playbook(DEPLOY, extra_vars={**survey, "rolling_update_audit_unchanged": "true"}).assert_ok()
    assert local_engine.containers.get(SERVICE).id == container.id
    unchanged = audit(stack_vars)[1:]
    assert [(e["result"], e["services"]) for e in unchanged] == [
        ("unchanged", [{"name": SERVICE, "old": container.attrs["Config"]["Image"], "new": v1.pinned}])]
    assert not Path(stack_vars["rolling_update_lock_path"]).exists(), "the lock outlived the run"

    status = run_playbook(STATUS, extra_vars=stack_vars).assert_unchanged()
    lines = status.task("Show host x service x desired digest x running digest x health, and the last deploys")["msg"]
    assert lines[0] == f"{SERVICE}  desired={v1.pinned}  running={v1.pinned}  health=healthy"
    assert lines[1].startswith("audit ") and "updated by survey-user" in lines[1]


def test_a_held_lock_refuses_the_deploy_and_a_stale_one_is_broken_on_request(
        lab: Any, run_playbook: Any, local_engine: docker.DockerClient, stack_vars: dict[str, Any]) -> None:
    lock = Path(stack_vars["rolling_update_lock_path"])
    lock.parent.mkdir(parents=True)
    held = {"holder": "carol@ctl9 (AWX job 12)", "run_id": "20261129T220000Z-1", "since": "2026-11-29T22:00:00Z"}
    lock.write_text(json.dumps(held))

    refused = run_playbook(DEPLOY, extra_vars=stack_vars).assert_failed()
    message = refused.task("Stop before any host is touched")["msg"]
    holder = "carol@ctl9 (AWX job 12) (run 20261129T220000Z-1) since 2026-11-29T22:00:00Z"
    assert f"another deploy holds this host: {holder}" in message
    assert json.loads(lock.read_text()) == held
    assert local_engine.containers.list(all=True, ignore_removed=True, filters={"label": f"dockhand.stack={STACK}"}) == []

    run_playbook(DEPLOY, extra_vars={**stack_vars, "rolling_update_break_lock": "true"}).assert_ok()
    assert local_engine.containers.get(SERVICE).attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert not lock.exists()


def test_an_unreachable_host_stops_the_run_before_any_host_is_touched(run_playbook: Any, tmp_path: Path,
                                                                      local_engine: docker.DockerClient,
                                                                      stack_vars: dict[str, Any]) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"docker_hosts": {"hosts": {
        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        # Nothing listens on port 1: SSH fails at once, as with a host whose sshd stopped.
        "ghost": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root"},
    }}}))
    result = run_playbook(DEPLOY, inventory=inventory, extra_vars=stack_vars).assert_failed()
    message = result.task("Stop before any host is touched", host="localhost")["msg"]
    assert "ghost: unreachable or failed before it could be locked and prepared" in message
    assert not Path(stack_vars["rolling_update_lock_path"]).exists(), "the reachable host's lock was left behind"
    assert local_engine.containers.list(all=True, ignore_removed=True, filters={"label": f"dockhand.stack={STACK}"}) == []
    assert audit(stack_vars) == []


def test_a_second_deploy_while_one_runs_is_refused_and_the_first_completes(lab: Any, run_playbook: Any,
                                                                           tmp_path: Path,
                                                                           local_engine: docker.DockerClient,
                                                                           stack_vars: dict[str, Any]) -> None:
    # The first run's load balancer hook (rolling_update_lb=tasks) waits for a gate the test opens, so the
    # second run surely starts while the first holds the lock.
    gate, hook_log = tmp_path / "gate", tmp_path / "lb-actions.log"
    hook = tmp_path / "lb.yml"
    hook.write_text(f"""
- name: Wait for the test's gate
  ansible.builtin.wait_for:
    path: {gate}
    timeout: 300
- name: Record the action
  ansible.builtin.lineinfile:
    path: {hook_log}
    line: "{{{{ rolling_update_lb_action }}}}"
    create: true
    mode: "0644"
""")
    first_vars = {**stack_vars, "rolling_update_lb": "tasks", "rolling_update_lb_tasks": str(hook),
                  "awx_user_name": "first-user"}
    outcome: dict[str, Any] = {}
    first = threading.Thread(target=lambda: outcome.update(result=run_playbook(DEPLOY, extra_vars=first_vars)))
    first.start()
    try:
        lock = Path(stack_vars["rolling_update_lock_path"])
        deadline = time.monotonic() + 300
        while not lock.exists():
            assert first.is_alive() and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.2)

        second = run_playbook(DEPLOY, extra_vars={**stack_vars, "awx_user_name": "second-user"}).assert_failed()
        message = second.task("Stop before any host is touched")["msg"]
        assert "another deploy holds this host: first-user@" in message
        assert json.loads(lock.read_text())["holder"].startswith("first-user@")
    finally:
        gate.touch()
        first.join(timeout=600)
    outcome["result"].assert_ok()
    assert hook_log.read_text().split() == ["drain", "ready"]
    assert local_engine.containers.get(SERVICE).attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert [entry["user"] for entry in audit(stack_vars)] == ["first-user"]
    assert not lock.exists()


def _kill_playbook_processes(marker: str) -> int:
    """SIGKILL every ansible-playbook process (the run and its workers) whose command line holds ``marker``."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"ansible-playbook" in arg for arg in argv[:2]) and any(marker.encode() in arg for arg in argv):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def test_a_killed_controller_leaves_its_lock_and_the_next_run_takes_it_over_and_converges(
        lab: Any, run_playbook: Any, tmp_path: Path, local_engine: docker.DockerClient,
        stack_vars: dict[str, Any]) -> None:
    # The first run stops in its load balancer hook (the host drained, nothing converged yet) and is killed there,
    # with SIGKILL: no rescue, no finish play, the lock stays. Its journal record says which process ran it.
    gate = tmp_path / "never-opened"
    hook = tmp_path / "lb.yml"
    hook.write_text(f"""
- name: Wait for a gate nobody opens
  ansible.builtin.wait_for:
    path: {gate}
    timeout: 300
""")
    journal = tmp_path / "journal"
    first_vars = {**stack_vars, "rolling_update_lb": "tasks", "rolling_update_lb_tasks": str(hook),
                  "rolling_update_journal_path": str(journal), "awx_user_name": "killed-user"}
    outcome: dict[str, Any] = {}
    first = threading.Thread(target=lambda: outcome.update(result=run_playbook(DEPLOY, extra_vars=first_vars)))
    first.start()
    lock = Path(stack_vars["rolling_update_lock_path"])
    try:
        deadline = time.monotonic() + 300
        while not lock.exists() or not list(journal.glob("*.json")):
            assert first.is_alive() and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        time.sleep(1)  # into the hook's wait
        assert _kill_playbook_processes(str(tmp_path / "extra-vars-1.json")) >= 1
    finally:
        first.join(timeout=120)
    assert outcome["result"].rc != 0
    left = json.loads(lock.read_text())
    assert left["holder"].startswith("killed-user@"), left
    assert local_engine.containers.list(all=True, ignore_removed=True, filters={"label": f"dockhand.stack={STACK}"}) == []

    # The next run from this controller finds that run's process gone, takes the lock over and converges.
    run_playbook(DEPLOY, extra_vars={**stack_vars, "rolling_update_journal_path": str(journal),
                                     "awx_user_name": "next-user"}).assert_ok()
    assert local_engine.containers.get(SERVICE).attrs["Config"]["Image"] == lab.images["v1"].pinned
    assert not lock.exists()
    [entry] = audit(stack_vars)
    assert entry["user"] == "next-user" and entry["result"] == "updated", entry
    assert f"took over the deploy lock of run {left['run_id']}" in entry["note"], entry
    assert "its ansible-playbook process" in entry["note"] and "is gone" in entry["note"], entry
