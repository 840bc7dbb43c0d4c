# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""haproxy's runtime API (the stats socket): read a server's state, set it, wait for it to settle.

Only four commands are used, all present since haproxy 1.8: ``show servers state <backend>``
(admin and operational state as numbers), ``show stat`` (current sessions),
``set server <backend>/<server> state ready|drain|maint`` and
``set server <backend>/<server> health up|stopping|down`` (the health checks' verdict, forced).
"""

from __future__ import annotations

import csv
import io
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

ADMIN_STATES = ("ready", "drain", "maint")
# What ``set server ... health`` accepts; each is also the operational state it leads to.
HEALTH_STATES = ("up", "stopping", "down")

# srv_admin_state bits (haproxy include/haproxy/server-t.h). Only the forced ones (set through
# this API) are ours to change; the others come from the configuration, tracking or DNS.
_FORCED_MAINT = 0x01
_INHERITED_MAINT = 0x02
_CONFIG_MAINT = 0x04
_FORCED_DRAIN = 0x08
_INHERITED_DRAIN = 0x10
_RESOLUTION_MAINT = 0x20
_HEALTH_MAINT = 0x40
_OTHER_MAINT = _INHERITED_MAINT | _CONFIG_MAINT | _RESOLUTION_MAINT | _HEALTH_MAINT

# srv_op_state values.
_OPERATIONAL = {0: "down", 1: "starting", 2: "up", 3: "stopping"}


class HaproxyError(Exception):
    """A runtime API failure worded for a person: what was asked, where, and what haproxy said."""


@dataclass(frozen=True)
class ServerState:
    backend: str
    server: str
    admin: str          # ready | drain | maint: the state this API sets
    operational: str    # up | down | starting | stopping: what the health checks say
    sessions: int       # connections the server has now
    status: str         # haproxy's own status text (UP, DOWN, DRAIN, MAINT, ...)
    maint_elsewhere: bool = False  # in maintenance through the configuration, tracking or DNS

    def as_dict(self) -> dict[str, Any]:
        return dict(backend=self.backend, server=self.server, admin=self.admin, operational=self.operational,
                    sessions=self.sessions, status=self.status, maint_elsewhere=self.maint_elsewhere)


def admin_state(bits: int) -> str:
    if bits & _FORCED_MAINT:
        return "maint"
    if bits & _FORCED_DRAIN:
        return "drain"
    return "ready"


def parse_servers_state(text: str, backend: str, server: str) -> tuple[int, int]:
    """(srv_op_state, srv_admin_state) of one server from ``show servers state <backend>``."""
    header: list[str] = []
    for line in text.splitlines():
        if line.startswith("# "):
            header = line[2:].split()
            continue
        fields = line.split()
        if not header or len(fields) < len(header) // 2:
            continue
        row = dict(zip(header, fields))
        if row.get("be_name") == backend and row.get("srv_name") == server:
            try:
                return int(row["srv_op_state"]), int(row["srv_admin_state"])
            except (KeyError, ValueError):
                raise HaproxyError("haproxy answered 'show servers state %s' in a form this module does not "
                                   "know: %r" % (backend, line))
    raise HaproxyError("haproxy has no server %s in backend %s" % (server, backend))


def parse_stat(text: str, backend: str, server: str) -> tuple[int, str]:
    """(current sessions, status text) of one server from ``show stat`` (CSV)."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise HaproxyError("haproxy answered 'show stat' without its CSV header: %r" % text[:200])
    reader = csv.DictReader(io.StringIO("\n".join([lines[0][2:]] + lines[1:])))
    for row in reader:
        if row.get("pxname") == backend and row.get("svname") == server:
            return int(row.get("scur") or 0), row.get("status") or ""
    raise HaproxyError("haproxy has no server %s in backend %s" % (server, backend))


class ServerApi(Protocol):
    """What converge_server needs of the runtime API."""

    def server(self, backend: str, server: str) -> ServerState: ...

    def set_admin(self, backend: str, server: str, state: str) -> None: ...

    def set_health(self, backend: str, server: str, health: str) -> None: ...


class RuntimeApi:
    """One command per connection, as haproxy's stats socket expects in non-interactive mode."""

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.address = address
        self.timeout = timeout

    def _connect(self) -> socket.socket:
        if "/" in self.address:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: Any = self.address
        else:
            host, _sep, port = self.address.rpartition(":")
            if not host or not port.isdigit():
                raise HaproxyError("socket %r is neither a unix socket path nor host:port" % self.address)
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            target = (host.strip("[]"), int(port))
        sock.settimeout(self.timeout)
        try:
            sock.connect(target)
        except OSError as exc:
            sock.close()
            raise HaproxyError("cannot reach haproxy's runtime API at %s (%s): is haproxy running with "
                               "'stats socket %s level admin', and does this host see it?"
                               % (self.address, exc.strerror or exc, self.address))
        return sock

    def command(self, line: str) -> str:
        sock = self._connect()
        try:
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except OSError as exc:
            raise HaproxyError("haproxy at %s did not answer %r: %s" % (self.address, line, exc))
        finally:
            sock.close()
        return b"".join(chunks).decode(errors="replace")

    def server(self, backend: str, server: str) -> ServerState:
        servers_state = self.command("show servers state %s" % backend)
        if servers_state.strip().startswith("Can't find backend"):
            raise HaproxyError("haproxy has no backend %s" % backend)
        op_state, admin_bits = parse_servers_state(servers_state, backend, server)
        sessions, status = parse_stat(self.command("show stat"), backend, server)
        return ServerState(backend=backend, server=server, admin=admin_state(admin_bits),
                           operational=_OPERATIONAL.get(op_state, str(op_state)), sessions=sessions,
                           status=status, maint_elsewhere=bool(admin_bits & _OTHER_MAINT))

    def _set(self, backend: str, server: str, what: str, value: str) -> None:
        line = "set server %s/%s %s %s" % (backend, server, what, value)
        answer = self.command(line).strip()
        if answer:
            # haproxy says nothing on success; anything else is its refusal ("No such server.", ...).
            raise HaproxyError("haproxy refused '%s': %s" % (line, answer))

    def set_admin(self, backend: str, server: str, state: str) -> None:
        self._set(backend, server, "state", state)

    def set_health(self, backend: str, server: str, health: str) -> None:
        self._set(backend, server, "health", health)


@dataclass
class ServerResult:
    changed: bool
    before: ServerState
    after: ServerState
    waited: float = 0.0
    warnings: list[str] = field(default_factory=list)
    health_forced: bool = False

    def as_dict(self, diff: bool) -> dict[str, Any]:
        result: dict[str, Any] = dict(changed=self.changed, previous=self.before.admin, waited=round(self.waited, 1),
                                      **self.after.as_dict())
        if diff:
            result["diff"] = dict(before=dict(admin=self.before.admin), after=dict(admin=self.after.admin))
            if self.health_forced:
                result["diff"]["before"]["operational"] = self.before.operational
                result["diff"]["after"]["operational"] = self.after.operational
        return result


def _settled(state: ServerState, want: str) -> bool:
    """Drained or in maintenance: no connections left. Ready: the health checks say up."""
    if want == "ready":
        return state.operational == "up"
    return state.sessions == 0


def _not_settled_message(state: ServerState, want: str, timeout: float) -> str:
    if want == "ready":
        return ("server %s/%s is ready but its health checks still say %s (haproxy status %s) after %d s; "
                "check the service on that host, or raise wait_timeout"
                % (state.backend, state.server, state.operational, state.status, timeout))
    return ("server %s/%s still has %d connection(s) after %d s in %s; raise wait_timeout for long-lived "
            "connections, or use state=maint to stop regardless" % (state.backend, state.server, state.sessions,
                                                                    timeout, want))


def converge_server(api: ServerApi, backend: str, server: str, want: Optional[str], *, wait: bool,
                    wait_timeout: float, check_mode: bool, health: Optional[str] = None, poll: float = 0.5,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], None] = time.sleep) -> ServerResult:
    """Put one server in ``want`` (None: only report), then wait until it has settled there.

    ``health`` forces the health checks' verdict first (the caller checked the server itself), so a
    server made ready is up at once instead of after haproxy's ``rise`` checks; haproxy keeps checking.
    """
    before = api.server(backend, server)
    result = ServerResult(changed=False, before=before, after=before)
    if want is None and health is None:
        return result
    if want is not None and want not in ADMIN_STATES:
        raise HaproxyError("state must be one of %s (got %r)" % (", ".join(ADMIN_STATES), want))
    if health is not None and health not in HEALTH_STATES:
        raise HaproxyError("health must be one of %s (got %r)" % (", ".join(HEALTH_STATES), health))
    want = want or before.admin
    if before.maint_elsewhere and want != "maint":
        result.warnings.append("server %s/%s is also in maintenance through haproxy's configuration, tracking or "
                               "DNS; it takes no traffic until that is lifted" % (backend, server))
    set_health = health is not None and before.operational != health
    result.changed = before.admin != want or set_health
    result.health_forced = set_health
    if check_mode:
        result.after = ServerState(**{**before.as_dict(), "admin": want,
                                      "operational": health if set_health else before.operational})
        return result
    if set_health:
        api.set_health(backend, server, str(health))
    if before.admin != want:
        api.set_admin(backend, server, want)
    state = api.server(backend, server)
    if wait and not before.maint_elsewhere:
        start = clock()
        while not _settled(state, want):
            if clock() - start >= wait_timeout:
                raise HaproxyError(_not_settled_message(state, want, wait_timeout))
            sleep(poll)
            state = api.server(backend, server)
        result.waited = clock() - start
    result.after = state
    return result


def server_argument_spec() -> dict[str, Any]:
    """The options of haproxy_server, for the module and for its action on the controller alike."""
    return dict(
        socket=dict(type="str", required=True),
        backend=dict(type="str", required=True),
        server=dict(type="str", required=True),
        state=dict(type="str", choices=list(ADMIN_STATES)),
        health=dict(type="str", choices=list(HEALTH_STATES)),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=60),
        timeout=dict(type="int", default=5),
    )


def converge_from_params(params: dict[str, Any], *, check_mode: bool) -> ServerResult:
    """haproxy_server's task from its validated options."""
    for option in ("wait_timeout", "timeout"):
        if params[option] <= 0:
            raise HaproxyError("%s must be a positive number of seconds (got %d)" % (option, params[option]))
    return converge_server(RuntimeApi(params["socket"], params["timeout"]), params["backend"], params["server"],
                           params["state"], wait=params["wait"], wait_timeout=params["wait_timeout"],
                           check_mode=check_mode, health=params["health"])
