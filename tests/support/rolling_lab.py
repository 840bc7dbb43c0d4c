"""What the rolling scenario's verifiers read: the lab's recorded digests, haproxy's own state, the
load generator's counts and the files the scenario kept. Facts come from haproxy, the nodes'
engines and files, never from the playbook's output alone."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

LAB = Path(os.environ.get("DOCKHAND_LAB_DIR", "/tmp/dockhand-lab"))
STATE = Path("/tmp/ro-rolling")
SERVICE = "demo-web"
NODES = ("node1", "node2", "node3")


def images() -> dict[str, Any]:
    state: dict[str, Any] = json.loads((LAB / "state.json").read_text())
    return dict(state["images"])


def read_json(name: str) -> Any:
    return json.loads((STATE / name).read_text())


def haproxy(command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(LAB / "haproxy" / "admin.sock"))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def haproxy_servers() -> dict[str, tuple[int, str]]:
    """Server -> (srv_admin_state bits, status) of backend app: 0 bits is enabled (not drained, not in maintenance)."""
    admin = {}
    for line in haproxy("show servers state app").splitlines()[2:]:
        fields = line.split()
        if len(fields) > 6:
            admin[fields[3]] = int(fields[6])
    rows = haproxy("show stat").splitlines()
    header = rows[0].lstrip("# ").split(",")
    status = {}
    for row in rows[1:]:
        values = dict(zip(header, row.split(",")))
        if values.get("pxname") == "app" and values.get("svname") in admin:
            status[values["svname"]] = values["status"]
    return {name: (admin[name], status[name]) for name in admin}


def audit(host: Any) -> list[dict[str, Any]]:
    """A node's audit log, read on the node."""
    log = host.file("/var/log/dockhand/audit.jsonl")
    return [json.loads(line) for line in log.content_string.splitlines()] if log.exists else []
