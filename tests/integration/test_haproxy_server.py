"""Scenario: dockhand.containers.haproxy_server drains, readies and reports a server of the lab's real
haproxy through its runtime API; every assertion reads haproxy's own state (show stat), not the module's."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.lab

SERVER = "node3"
FORCED_DRAIN = 0x08  # srv_admin_state bit haproxy sets for "set server ... state drain"


def admin_bits(lb: Any, server: str) -> int:
    """srv_admin_state of a server, read straight from haproxy."""
    rows = [line.split() for line in lb.command("show servers state app").splitlines()[2:] if line.strip()]
    return int(next(row[6] for row in rows if row[3] == server))


def play(state: str | None = None, server: str = SERVER, **options: Any) -> str:
    lines = ["- hosts: localhost", "  gather_facts: false", "  tasks:", "    - name: Set the server",
             "      dockhand.containers.haproxy_server:", "        socket: '{{ socket }}'", "        backend: app",
             f"        server: {server}"]
    if state:
        lines.append(f"        state: {state}")
    lines += [f"        {key}: {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def lb(lab: Any, haproxy: Any) -> Iterator[Any]:
    haproxy.set_state(SERVER, "ready")
    yield haproxy
    haproxy.set_state(SERVER, "ready")


def test_drain_takes_the_server_out_then_changes_nothing(lab: Any, run_playbook: Any, lb: Any) -> None:
    variables = {"socket": str(lab.haproxy_socket)}
    first = run_playbook(play("drain"), extra_vars=variables, diff=True).assert_ok()
    result = first.task("Set the server")
    assert result["changed"] and (result["previous"], result["admin"]) == ("ready", "drain")
    assert result["diff"] == {"before": {"admin": "ready"}, "after": {"admin": "drain"}}
    assert result["sessions"] == 0
    assert admin_bits(lb, SERVER) & FORCED_DRAIN
    run_playbook(play("drain"), extra_vars=variables).assert_unchanged()


def test_check_mode_predicts_without_setting(lab: Any, run_playbook: Any, lb: Any) -> None:
    result = run_playbook(play("maint"), extra_vars={"socket": str(lab.haproxy_socket)}, check=True).assert_ok()
    assert result.task("Set the server")["changed"]
    assert lb.servers()[SERVER] != "MAINT" and admin_bits(lb, SERVER) == 0


def test_maint_then_ready_without_waiting(lab: Any, run_playbook: Any, lb: Any) -> None:
    variables = {"socket": str(lab.haproxy_socket)}
    run_playbook(play("maint"), extra_vars=variables).assert_ok()
    assert lb.servers()[SERVER] == "MAINT"
    ready = run_playbook(play("ready", wait="false"), extra_vars=variables).assert_ok()
    assert ready.task("Set the server")["admin"] == "ready"
    assert lb.servers()[SERVER] != "MAINT"


def test_report_only_changes_nothing(lab: Any, run_playbook: Any, lb: Any) -> None:
    lb.set_state(SERVER, "drain")
    result = run_playbook(play(), extra_vars={"socket": str(lab.haproxy_socket)}).assert_unchanged()
    assert result.task("Set the server")["admin"] == "drain"


def test_unknown_server_fails_naming_it_and_changes_nothing(lab: Any, run_playbook: Any, lb: Any) -> None:
    # The administrative states (what the module sets); the health checks' own state may move meanwhile.
    before = {server: admin_bits(lb, server) for server in lb.servers()}
    result = run_playbook(play("drain", server="node9"), extra_vars={"socket": str(lab.haproxy_socket)})
    result.assert_failed()
    assert "no server node9 in backend app" in result.task("Set the server")["msg"]
    assert {server: admin_bits(lb, server) for server in lb.servers()} == before


def test_missing_socket_is_explained(run_playbook: Any, tmp_path: Any) -> None:
    result = run_playbook(play("drain"), extra_vars={"socket": str(tmp_path / "nope.sock")})
    result.assert_failed()
    assert "cannot reach haproxy's runtime API" in result.task("Set the server")["msg"]
