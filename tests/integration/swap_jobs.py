"""Jobs that run dockhand.containers.service the way a controller does, and can be killed mid-run.

A :class:`Job` is a process group (a shell standing in for the controller's job, with the module process as its
child), so killing it is what cancelling an AWX job or losing a CI runner does: SIGKILL to every process. Kill
points come from the node engine's own event stream (:class:`KillAt`), never from sleeps.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from typing import Any, Callable, Optional

import docker
from module_runner import COLLECTIONS, MODULE_PACKAGE, REPO, ModuleResult, _ensure_collection_link, owned_by

# Engine events the module's calls cause, and the health verdicts it waits for. Left out: the health checks' own
# exec_* events (their number depends on timing, not on what the run does) and "die", which falls between the
# "kill" and the "stop" of one stop call (killing there is killing in the same call as at either of those).
SWAP_ACTIONS = ("create", "rename", "start", "kill", "stop", "destroy", "health_status")


def is_swap_event(event: dict[str, Any], service: str) -> bool:
    name = (event.get("Actor") or {}).get("Attributes", {}).get("name", "")
    action = str(event.get("Action") or event.get("status") or "")
    return event.get("Type") == "container" and owned_by(name, service) and action.split(":", maxsplit=1)[0] in SWAP_ACTIONS


def describe(event: dict[str, Any]) -> str:
    attributes = (event.get("Actor") or {}).get("Attributes", {})
    return "%s %s" % (event.get("Action"), attributes.get("name"))


class Job:
    """One run of the service module in its own process group: ``sh`` (the job) with the module as its child."""

    def __init__(self, args: dict[str, Any]) -> None:
        _ensure_collection_link()
        self.args = args
        self.payload = json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=False, _ansible_diff=False)})
        module = shlex.join([sys.executable, "-m", MODULE_PACKAGE + ".service"])
        env = dict(os.environ, PYTHONPATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
        self.proc = subprocess.Popen(["sh", "-c", module + "; echo job-done >&2"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=str(REPO), start_new_session=True)
        # The arguments go in (and the output comes out) right away, whether or not anyone waits for the result yet.
        self.output: tuple[str, str] = ("", "")
        self.reader = threading.Thread(target=self._communicate, daemon=True)
        self.reader.start()

    def _communicate(self) -> None:
        self.output = self.proc.communicate(self.payload)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def result(self, timeout: float = 300) -> ModuleResult:
        self.reader.join(timeout)
        if self.reader.is_alive():
            self.kill()
            self.reader.join()
        stdout, stderr = self.output
        try:
            data = json.loads(stdout)
        except ValueError:
            data = {"failed": True, "msg": "module printed no JSON"}
        return ModuleResult(module="service", args=self.args, rc=self.proc.returncode, data=data, stdout=stdout,
                            stderr=stderr)


class KillAt:
    """Watch the engine's events for ``service`` and kill the job at the first swap event for which ``when``
    (given the swap events so far, the newest last) is true; ``when=None`` only records. ``seen`` holds the
    swap events in order, as "<action> <container name>"."""

    def __init__(self, client: docker.DockerClient, service: str,
                 when: Optional[Callable[[list[str]], bool]] = None,
                 then: Optional[Callable[[], None]] = None) -> None:
        self.client = client
        self.service = service
        self.when = when
        self.then = then  # what to do instead of killing the job
        self.seen: list[str] = []
        self.job: Optional[Job] = None
        self.killed_at: Optional[str] = None
        self.ready = threading.Event()
        self.stream = client.api.events(decode=True, filters={"type": "container"})
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    @staticmethod
    def nth(number: int) -> Callable[[list[str]], bool]:
        return lambda seen: len(seen) == number

    def run(self, args: dict[str, Any]) -> ModuleResult:
        self.job = Job(args)
        self.ready.set()
        result = self.job.result()
        self.close()
        return result

    def _watch(self) -> None:
        try:
            for event in self.stream:
                if not is_swap_event(event, self.service):
                    continue
                self.seen.append(describe(event))
                if self.when is not None and self.killed_at is None and self.when(self.seen):
                    if self.then is not None:
                        self.then()  # each event where ``when`` holds
                        continue
                    self.killed_at = self.seen[-1]
                    self.ready.wait(30)
                    assert self.job is not None
                    self.job.kill()
        except Exception:  # the stream closes under us when close() is called
            return

    def close(self) -> None:
        self.stream.close()


def names_on_engine(client: docker.DockerClient, service: str) -> set[str]:
    """Names of the containers ``service`` owns (itself, its swap names, its lock), without inspecting each one,
    so containers that come and go meanwhile (other services' runs) cannot make the listing fail."""
    return {c["Names"][0].lstrip("/") for c in client.api.containers(all=True)
            if owned_by(c["Names"][0].lstrip("/"), service)}
