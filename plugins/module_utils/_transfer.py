# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming a volume's data from one host to another through the controller: ``ssh X send | ssh Y receive``.

Runs on the controller. Both ends run ``_archive.py`` itself (its :func:`~._archive.main`), shipped inside the
command line (compressed, base64): nothing is installed or left on the hosts. The two SSH clients are joined by
one pipe; this process only starts them and reads their reports, so no data passes through it and nothing is
stored on the controller. The receiver verifies (sha256 of the stream, the safety rule before tar, the listing
after) and empties its directory on any failure; its one-line JSON report is the result.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from . import _archive
from ._archive import STREAM_COMPRESSIONS, check_compression, ArchiveError

STREAM = "stream"

# Own connections without compression (the stream is compressed already, or incompressible) and without a control
# master: one opened by Ansible with -C would carry the stream compressed. ssh keeps the first value of an option.
_SSH_OVERRIDES = ["-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "Compression=no", "-o", "BatchMode=yes"]


class TransferError(Exception):
    """A stream that failed; the message says which end failed and what was left where."""


@dataclass
class Endpoint:
    """One host of a transfer as the controller reaches it over SSH, and the directory there."""

    host: str
    path: str
    port: Optional[int] = None
    user: Optional[str] = None
    private_key_file: Optional[str] = None
    ssh_executable: str = "ssh"
    ssh_args: list[str] = field(default_factory=list)
    python: str = "/usr/bin/python3"
    name: str = ""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Endpoint":
        args = params.get("ssh_args") or []
        words = shlex.split(args) if isinstance(args, str) else [str(a) for a in args]
        for key in ("ssh_common_args", "ssh_extra_args"):
            if params.get(key):
                words += shlex.split(str(params[key]))
        return cls(host=params["host"], path=params["path"], port=params.get("port"), user=params.get("user"),
                   private_key_file=params.get("private_key_file"),
                   ssh_executable=params.get("ssh_executable") or "ssh", ssh_args=[w for w in words if w != "-C"],
                   python=params.get("python") or "/usr/bin/python3", name=params.get("name") or params["host"])

    def problems(self, which: str) -> list[str]:
        found = []
        if not self.path.startswith("/"):
            found.append("%s.path must be the absolute directory of the volume's data on %s (got %r)"
                         % (which, self.name, self.path))
        if self.port is not None and not 0 < self.port < 65536:
            found.append("%s.port must be 1..65535 (got %d)" % (which, self.port))
        return found

    def command(self, remote: list[str]) -> list[str]:
        """The local argv running ``remote`` (words, quoted here) on this host."""
        argv = [self.ssh_executable] + _SSH_OVERRIDES
        if self.port:
            argv += ["-o", "Port=%d" % self.port]
        if self.user:
            argv += ["-o", "User=%s" % self.user]
        if self.private_key_file:
            argv += ["-o", "IdentityFile=\"%s\"" % self.private_key_file]
        return argv + self.ssh_args + [self.host, " ".join(shlex.quote(w) for w in remote)]


def _payload() -> str:
    """A ``python -c`` program holding ``_archive.py`` and running its ``main`` with the command's arguments."""
    spec = _archive.__spec__
    loader = spec.loader if spec is not None else None
    source = loader.get_source(spec.name) if loader is not None and spec is not None else None  # type: ignore[attr-defined]
    if source is None:
        raise TransferError("cannot read the source of %s to ship it" % _archive.__name__)
    packed = base64.b64encode(zlib.compress(source.encode("utf-8"), 9)).decode("ascii")
    return ("import base64,sys,types,zlib;m=types.ModuleType('dockhand_archive');sys.modules[m.__name__]=m;"
            "exec(compile(zlib.decompress(base64.b64decode('%s')),'dockhand_archive.py','exec'),m.__dict__);"
            "sys.exit(m.main())" % packed)


@dataclass
class TransferRequest:
    source: Endpoint
    target: Endpoint
    compression: str = "zstd"
    compression_level: Optional[int] = None
    live: bool = False
    replace_listing: Optional[str] = None

    def problems(self) -> list[str]:
        found = self.source.problems("source") + self.target.problems("target")
        if self.compression not in STREAM_COMPRESSIONS:
            found.append("compression must be one of %s for a stream (got %r)"
                         % (", ".join(STREAM_COMPRESSIONS), self.compression))
        else:
            try:
                check_compression(self.compression, self.compression_level)
            except ArchiveError as exc:
                found.append(str(exc))
        return found

    def sender(self, payload: str) -> list[str]:
        remote = [self.source.python, "-c", payload, "send", self.source.path, self.compression]
        if self.compression_level is not None:
            remote.append(str(self.compression_level))
        if self.live:
            remote.append("--live")
        return self.source.command(remote)

    def receiver(self, payload: str) -> list[str]:
        remote = [self.target.python, "-c", payload, "receive", self.target.path]
        if self.live:
            remote.append("--live")
        if self.replace_listing:
            remote += ["--replace", self.replace_listing]
        return self.target.command(remote)


def _collect(stream: Optional[IO[bytes]], into: list[bytes]) -> threading.Thread:
    def read() -> None:
        if stream is not None:
            into.append(stream.read())
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _last_json(text: str) -> Optional[dict[str, Any]]:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def transfer(req: TransferRequest) -> dict[str, Any]:
    """Run the stream; the receiver's verified result, or TransferError saying which end failed."""
    problems = req.problems()
    if problems:
        raise TransferError("; ".join(problems))
    payload = _payload()
    clock = time.monotonic()
    try:
        send = subprocess.Popen(req.sender(payload), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    except OSError as exc:
        raise TransferError("cannot run %s for %s: %s" % (req.source.ssh_executable, req.source.name, exc.strerror))
    try:
        receive = subprocess.Popen(req.receiver(payload), stdin=send.stdout, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
    except OSError as exc:
        send.kill()
        send.wait()
        raise TransferError("cannot run %s for %s: %s" % (req.target.ssh_executable, req.target.name, exc.strerror))
    if send.stdout is not None:
        send.stdout.close()  # the receiver's ssh holds the read end; the data never passes through here
    outputs: dict[str, list[bytes]] = {"send_err": [], "out": [], "err": []}
    readers = [_collect(send.stderr, outputs["send_err"]), _collect(receive.stdout, outputs["out"]),
               _collect(receive.stderr, outputs["err"])]
    receive_code = receive.wait()
    if send.poll() is None and receive_code != 0:
        send.kill()  # the receiver gave up: the sender would block on a pipe nobody reads
    send_code = send.wait()
    for reader in readers:
        reader.join()
    duration = time.monotonic() - clock
    text = {k: b"".join(v).decode("utf-8", "replace").strip() for k, v in outputs.items()}
    report = _last_json(text["out"])
    sender_said = text["send_err"][-1500:] or "exit %d" % send_code
    if report is None:
        raise TransferError("the receiver on %s gave no report (ssh exit %d: %s); the sender on %s: %s. If the "
                            "receiver started, it empties %s when its stream ends early"
                            % (req.target.name, receive_code, text["err"][-1500:] or "no message", req.source.name,
                               sender_said, req.target.path))
    if report.get("failed") or receive_code != 0:
        where = "" if send_code == 0 else "; the sender on %s: %s" % (req.source.name, sender_said)
        raise TransferError("the receiver on %s refused the stream: %s%s"
                            % (req.target.name, report.get("msg", "no message"), where))
    if send_code != 0:
        raise TransferError("the sender on %s failed after the receiver on %s accepted the stream (exit %d: %s)"
                            % (req.source.name, req.target.name, send_code, sender_said))
    return dict(report, data_path=STREAM, duration=round(duration, 3), source=req.source.name,
                target=req.target.name)


def transfer_argument_spec() -> dict[str, Any]:
    """volume_transfer's options: two SSH endpoints as Ansible's ssh connection takes them, and the stream's."""
    endpoint = dict(
        host=dict(type="str", required=True),
        path=dict(type="str", required=True),
        name=dict(type="str"),
        port=dict(type="int"),
        user=dict(type="str"),
        private_key_file=dict(type="path"),
        ssh_executable=dict(type="str", default="ssh"),
        ssh_args=dict(type="raw"),
        ssh_common_args=dict(type="str"),
        ssh_extra_args=dict(type="str"),
        python=dict(type="str", default="/usr/bin/python3"),
    )
    return dict(
        source=dict(type="dict", required=True, options=endpoint),
        target=dict(type="dict", required=True, options=endpoint),
        compression=dict(type="str", choices=list(STREAM_COMPRESSIONS), default="zstd"),
        compression_level=dict(type="int"),
        live=dict(type="bool", default=False),
        replace_listing=dict(type="str"),
    )
