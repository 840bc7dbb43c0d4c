from __future__ import annotations

from dataclasses import replace
from typing import Optional

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._haproxy import (
    HaproxyError, ServerResult, ServerState, admin_state, converge_server, parse_servers_state, parse_stat,
)

# As haproxy 2.6 answers, trimmed to two servers.
HEADER = ("# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
          "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
          "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
          "srv_check_addr srv_agent_addr srv_agent_port")
SERVERS_STATE = "1\n" + HEADER + """
3 app 1 node1 127.0.0.1 2 0 1 1 102 5 2 0 6 0 0 0 - 18081 - 0 0 - - 0
3 app 2 node2 127.0.0.1 0 9 1 1 102 5 2 0 6 0 0 0 - 18082 - 0 0 - - 0
"""

STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
app,FRONTEND,,,0,1,262,2,220,320,0,0,0,,,,,OPEN,
app,node1,0,0,3,1,,2,220,320,,0,,0,0,0,0,UP,1
app,node2,0,0,0,1,,2,220,320,,0,,0,0,0,0,MAINT,1
app,BACKEND,0,0,3,1,27,2,220,320,0,0,,0,0,0,0,UP,1
"""


def test_servers_state_gives_operational_and_admin_numbers() -> None:
    assert parse_servers_state(SERVERS_STATE, "app", "node1") == (2, 0)
    assert parse_servers_state(SERVERS_STATE, "app", "node2") == (0, 9)


def test_unknown_server_is_named() -> None:
    with pytest.raises(HaproxyError, match="no server node9 in backend app"):
        parse_servers_state(SERVERS_STATE, "app", "node9")


def test_stat_gives_sessions_and_status() -> None:
    assert parse_stat(STAT, "app", "node1") == (3, "UP")
    assert parse_stat(STAT, "app", "node2") == (0, "MAINT")


def test_stat_without_header_is_refused() -> None:
    with pytest.raises(HaproxyError, match="without its CSV header"):
        parse_stat("Unknown command.\n", "app", "node1")


@pytest.mark.parametrize("bits, state", [(0, "ready"), (0x01, "maint"), (0x08, "drain"), (0x09, "maint"),
                                         (0x04, "ready"), (0x0C, "drain")])
def test_admin_state_reads_the_forced_bits(bits: int, state: str) -> None:
    assert admin_state(bits) == state


class FakeApi:
    """A runtime API whose server drains one session per read (pure logic of the waits)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.sets: list[str] = []

    def server(self, backend: str, server: str) -> ServerState:
        current = self.state
        if current.sessions:
            self.state = replace(current, sessions=current.sessions - 1)
        return current

    def set_admin(self, backend: str, server: str, state: str) -> None:
        self.sets.append(state)
        self.state = replace(self.state, admin=state)

    def set_health(self, backend: str, server: str, health: str) -> None:
        self.sets.append("health " + health)
        self.state = replace(self.state, operational=health)


def server(admin: str = "ready", sessions: int = 0, operational: str = "up") -> ServerState:
    return ServerState(backend="app", server="node1", admin=admin, operational=operational, sessions=sessions,
                       status="UP")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def converge(api: FakeApi, want: Optional[str], *, check_mode: bool = False, timeout: float = 10,
             health: Optional[str] = None) -> ServerResult:
    clock = Clock()
    return converge_server(api, "app", "node1", want, wait=True, wait_timeout=timeout,
                           check_mode=check_mode, health=health, clock=clock, sleep=clock.sleep)


def test_drain_sets_the_state_and_waits_for_connections_to_finish() -> None:
    api = FakeApi(server(sessions=3))
    result = converge(api, "drain")
    assert api.sets == ["drain"]
    assert result.changed and result.after.admin == "drain" and result.after.sessions == 0


def test_drain_of_a_drained_server_changes_nothing() -> None:
    api = FakeApi(server(admin="drain"))
    result = converge(api, "drain")
    assert api.sets == [] and not result.changed


def test_check_mode_predicts_without_setting() -> None:
    api = FakeApi(server(sessions=2))
    result = converge(api, "maint", check_mode=True)
    assert api.sets == [] and result.changed and result.after.admin == "maint"


def test_connections_that_never_finish_fail_with_the_count() -> None:
    api = FakeApi(server(sessions=1000))
    with pytest.raises(HaproxyError, match="still has .* connection.* after 2 s in drain"):
        converge(api, "drain", timeout=2)


def test_ready_waits_for_the_health_checks() -> None:
    api = FakeApi(server(admin="drain", operational="down"))
    with pytest.raises(HaproxyError, match="health checks still say down"):
        converge(api, "ready", timeout=1)
    assert api.sets == ["ready"]


def test_without_state_only_reports() -> None:
    api = FakeApi(server(admin="maint"))
    result = converge(api, None)
    assert api.sets == [] and not result.changed and result.after.admin == "maint"


def test_ready_with_health_up_is_up_at_once_without_waiting_for_the_checks() -> None:
    api = FakeApi(server(admin="drain", operational="down"))
    result = converge(api, "ready", health="up", timeout=1)
    assert api.sets == ["health up", "ready"]
    assert result.changed and (result.after.admin, result.after.operational) == ("ready", "up")
    assert result.waited == 0
    assert result.as_dict(diff=True)["diff"] == {"before": {"admin": "drain", "operational": "down"},
                                                 "after": {"admin": "ready", "operational": "up"}}


def test_health_already_so_is_not_set_again() -> None:
    api = FakeApi(server(admin="ready", operational="up"))
    result = converge(api, "ready", health="up")
    assert api.sets == [] and not result.changed
    assert result.as_dict(diff=True)["diff"] == {"before": {"admin": "ready"}, "after": {"admin": "ready"}}


def test_health_in_check_mode_is_predicted_only() -> None:
    api = FakeApi(server(admin="drain", operational="down"))
    result = converge(api, "ready", health="up", check_mode=True)
    assert api.sets == [] and result.changed and result.after.operational == "up"


def test_health_alone_keeps_the_admin_state() -> None:
    api = FakeApi(server(admin="drain", operational="up"))
    result = converge(api, None, health="down")
    assert api.sets == ["health down"] and result.after.admin == "drain"


def test_unknown_health_is_refused() -> None:
    with pytest.raises(HaproxyError, match="health must be one of up, stopping, down"):
        converge(FakeApi(server()), "ready", health="fine")
