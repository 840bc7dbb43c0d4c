"""The lab's volume plugin ``dockhand-lab``: a real, non-local Docker volume driver for the tests.

Speaks Docker's (legacy) volume plugin protocol on a unix socket in the Engine's plugin directory, which the
Engine discovers the first time a volume names the driver. Each volume is a directory of its own under DATA_DIR;
its create options are kept beside it. The node's entrypoint starts it before dockerd and stops it after dockerd,
because an Engine that has used a legacy plugin waits ~15 s on every volume listing once the plugin is gone.

Usage: volume-plugin.py SOCKET DATA_DIR
"""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
LOCK = threading.Lock()


class Volumes:
    """Volume NAME lives in DATA_DIR/volumes/NAME; its options in DATA_DIR/options/NAME.json."""

    def __init__(self, root: str) -> None:
        self.data = os.path.join(root, "volumes")
        self.options = os.path.join(root, "options")
        os.makedirs(self.data, mode=0o700, exist_ok=True)
        os.makedirs(self.options, mode=0o700, exist_ok=True)

    def path(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise ValueError("invalid volume name %r" % name)
        return os.path.join(self.data, name)

    def describe(self, name: str) -> dict[str, Any]:
        return {"Name": name, "Mountpoint": self.path(name)}

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["Name"]
        os.makedirs(self.path(name), exist_ok=True)
        with open(os.path.join(self.options, name + ".json"), "w", encoding="utf-8") as handle:
            json.dump(request.get("Opts") or {}, handle)
        return {}

    def remove(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["Name"]
        shutil.rmtree(self.path(name), ignore_errors=True)
        try:
            os.unlink(os.path.join(self.options, name + ".json"))
        except FileNotFoundError:
            pass
        return {}

    def get(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["Name"]
        if not os.path.isdir(self.path(name)):
            return {"Err": "no such volume: %s" % name}
        return {"Volume": self.describe(name)}

    def mount(self, request: dict[str, Any]) -> dict[str, Any]:
        found = self.get(request)
        return found if "Err" in found else {"Mountpoint": found["Volume"]["Mountpoint"]}

    def list(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {"Volumes": [self.describe(name) for name in sorted(os.listdir(self.data))]}

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "/Plugin.Activate": lambda _r: {"Implements": ["VolumeDriver"]},
            "/VolumeDriver.Create": self.create,
            "/VolumeDriver.Remove": self.remove,
            "/VolumeDriver.Get": self.get,
            "/VolumeDriver.Path": self.mount,
            "/VolumeDriver.Mount": self.mount,
            "/VolumeDriver.Unmount": lambda _r: {},
            "/VolumeDriver.List": self.list,
            "/VolumeDriver.Capabilities": lambda _r: {"Capabilities": {"Scope": "local"}},
        }


class Handler(BaseHTTPRequestHandler):
    volumes: Volumes

    def do_POST(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        handler = self.volumes.handlers().get(self.path)
        if handler is None:
            self.answer(404, {"Err": "unknown endpoint %s" % self.path})
            return
        try:
            request = json.loads(body or b"{}") or {}
            with LOCK:
                reply = handler(request)
        except (OSError, ValueError, KeyError) as exc:
            reply = {"Err": "%s: %s" % (self.path, exc)}
        if self.path.startswith("/VolumeDriver."):
            reply.setdefault("Err", "")
        self.answer(200, reply)

    def answer(self, status: int, reply: dict[str, Any]) -> None:
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "engine"  # a unix socket peer has no address

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's signature)
        sys.stderr.write("volume-plugin: %s\n" % (format % args))


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(__doc__ or "")
        return 2
    socket_path, data_dir = argv[1], argv[2]
    Handler.volumes = Volumes(data_dir)
    os.makedirs(os.path.dirname(socket_path), exist_ok=True)
    try:
        os.unlink(socket_path)
    except FileNotFoundError:
        pass
    with Server(socket_path, Handler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
