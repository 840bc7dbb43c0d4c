"""Run one dockhand module for real, the way Ansible runs it on a host, without a whole playbook.

``ansible-playbook`` costs about 2.5 s before the first task; the service scenarios call their module dozens
of times, so most of them call the module directly: the module's own ``main()`` in a fresh Python process,
with its arguments as ``{"ANSIBLE_MODULE_ARGS": ...}`` on stdin (what AnsiballZ hands it), including
``_ansible_check_mode`` and ``_ansible_diff``. ``AnsibleModule`` does the argument parsing, ``no_log`` masking
and JSON exit exactly as under a playbook. Scenarios that are about Ansible itself (SSH to the nodes, what the
playbook output shows) use the ``run_playbook`` fixture instead.

Also here: the small engine probes the service scenarios share (names, clean-up, exec inside a container).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".cache" / "collections"
COLLECTION_LINK = COLLECTIONS / "ansible_collections" / "dockhand" / "containers"
MODULE_PACKAGE = "ansible_collections.dockhand.containers.plugins.modules"


@dataclass(frozen=True)
class ModuleResult:
    """The module's JSON return (``data``) plus how the process ended, for assertion messages."""

    module: str
    args: dict[str, Any]
    rc: int
    data: dict[str, Any]
    stdout: str
    stderr: str

    @property
    def failed(self) -> bool:
        return bool(self.data.get("failed")) or self.rc != 0

    @property
    def changed(self) -> bool:
        return bool(self.data.get("changed"))

    @property
    def msg(self) -> str:
        return str(self.data.get("msg", ""))

    @property
    def warnings(self) -> list[str]:
        """Warning texts (ansible-core 2.19 returns each as a summary dict with the text in event.msg)."""
        texts = []
        for item in self.data.get("warnings") or []:
            texts.append(item["event"]["msg"] if isinstance(item, dict) and "event" in item else str(item))
        return texts

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def describe(self) -> str:
        shown = {k: ("<secret>" if "password" in k else v) for k, v in self.args.items()}
        return (f"module {self.module} args {json.dumps(shown, default=str)}\nexit code {self.rc}\n"
                f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}")

    def assert_ok(self) -> "ModuleResult":
        assert not self.failed, f"module failed\n{self.describe()}"
        return self

    def assert_failed(self) -> "ModuleResult":
        assert self.failed, f"module was expected to fail but succeeded\n{self.describe()}"
        return self


def _ensure_collection_link() -> None:
    if not COLLECTION_LINK.exists():
        COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("../../../..", COLLECTION_LINK)


def run_module(module: str, args: dict[str, Any], *, check: bool = False, diff: bool = False,
               timeout: float = 300, env: dict[str, str] | None = None) -> ModuleResult:
    """Run ``dockhand.containers.<module>`` with ``args`` on this machine and return what it returned."""
    _ensure_collection_link()
    payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1", **(env or {}))
    proc = subprocess.run([sys.executable, "-m", f"{MODULE_PACKAGE}.{module}"],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}), capture_output=True, text=True,
                          env=env, cwd=str(REPO), timeout=timeout, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = {"failed": True, "msg": "module printed no JSON"}
    return ModuleResult(module=module, args=args, rc=proc.returncode, data=data, stdout=proc.stdout,
                        stderr=proc.stderr)


# --------------------------------------------------------------------------------------------- engine probes


def owned_by(name: str, prefix: str) -> bool:
    """``prefix`` itself or ``prefix-...``: so cleaning ``x-state`` never touches ``x-state2``'s objects."""
    return name == prefix or name.startswith(prefix + "-")


@contextlib.contextmanager
def clean_engine(node: Any, prefix: str) -> Iterator[docker.DockerClient]:
    """A client of ``node``'s own engine; the containers and volumes named ``prefix`` are removed before and after."""
    client = node.client()
    remove_service_objects(client, prefix)
    try:
        yield client
    finally:
        remove_service_objects(client, prefix)
        client.close()


def remove_service_objects(client: docker.DockerClient, prefix: str, *, with_users: bool = False) -> None:
    """Remove the containers and volumes a test made: named ``prefix`` or ``prefix-...``.

    ``with_users``: also any container mounting such a volume (helper containers with names of the Engine's choice).
    """
    for container in client.containers.list(all=True, ignore_removed=True):
        mounts = [m.get("Name") or "" for m in container.attrs.get("Mounts") or []] if with_users else []
        if owned_by(container.name, prefix) or any(owned_by(m, prefix) for m in mounts):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:  # gone meanwhile (a lock or helper container its module removed)
                pass
    for volume in client.volumes.list():
        if owned_by(volume.name, prefix):
            try:
                volume.remove(force=True)
            except docker.errors.NotFound:
                pass


def container_or_none(client: docker.DockerClient, name: str) -> Any:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def volume_names(client: docker.DockerClient, prefix: str) -> set[str]:
    return {v.name for v in client.volumes.list() if owned_by(v.name, prefix)}


def container_names(client: docker.DockerClient, prefix: str) -> set[str]:
    return {c.name for c in client.containers.list(all=True, ignore_removed=True) if owned_by(c.name, prefix)}


def exec_text(container: Any, command: str) -> str:
    """Run a shell command inside a running container; fail loudly on a non-zero exit."""
    code, output = container.exec_run(["/bin/sh", "-c", command])
    text = output.decode(errors="replace")
    assert code == 0, f"`{command}` in {container.name} exited {code}: {text}"
    return text


def served_version(container: Any) -> str:
    """What the app inside the container answers on /version, asked from inside the container."""
    return exec_text(container, "wget -q -O - http://127.0.0.1:8080/version").strip()


def poll(what: str, probe: Callable[[], bool], deadline_s: float = 60, interval: float = 0.25) -> None:
    """Wait for an engine fact to become true; the deadline bounds the wait, it is not what is tested."""
    end = time.monotonic() + deadline_s
    while not probe():
        if time.monotonic() > end:
            raise AssertionError(f"still not true after {deadline_s:.0f} s: {what}")
        time.sleep(interval)


def fingerprint(container: Any) -> dict[str, Any]:
    """The facts that must not move when a run is supposed to change nothing."""
    container.reload()
    attrs = container.attrs
    return {
        "id": container.id,
        "image": attrs["Image"],
        "config_image": attrs["Config"]["Image"],
        "env": sorted(attrs["Config"].get("Env") or []),
        "labels": attrs["Config"].get("Labels"),
        "started_at": attrs["State"]["StartedAt"],
        "running": attrs["State"]["Running"],
        "restart_count": attrs["RestartCount"],
        "restart_policy": attrs["HostConfig"]["RestartPolicy"],
        "log_config": attrs["HostConfig"]["LogConfig"],
        "mounts": sorted((m["Type"], m.get("Name") or m.get("Source"), m["Destination"]) for m in attrs["Mounts"]),
    }


def labelled(client: docker.DockerClient, label: str) -> list[Any]:
    return client.containers.list(all=True, ignore_removed=True, filters={"label": label})


def names_of(containers: Iterable[Any]) -> list[str]:
    return sorted(c.name for c in containers)


# --------------------------------------------------------------------------------------------- one service


class Service:
    """One service a test owns on one lab node: its name, its default module arguments, its engine.

    ``run(**changes)`` calls dockhand.containers.service with the defaults updated by ``changes``;
    a change of ``None`` drops that argument. Every container and volume named ``name`` or ``name-...``
    belongs to the test and is removed by :meth:`cleanup`.
    """

    def __init__(self, name: str, docker_host: str, client: docker.DockerClient, **defaults: Any) -> None:
        self.name = name
        self.volume = f"{name}-data"
        self.client = client
        self.defaults: dict[str, Any] = dict(name=name, docker_host=docker_host, **defaults)

    def args(self, **changes: Any) -> dict[str, Any]:
        merged = dict(self.defaults, **changes)
        return {k: v for k, v in merged.items() if v is not None}

    def run(self, *, check: bool = False, diff: bool = False, **changes: Any) -> ModuleResult:
        return run_module("service", self.args(**changes), check=check, diff=diff)

    def container(self) -> Any:
        return self.client.containers.get(self.name)

    def maybe_container(self) -> Any:
        return container_or_none(self.client, self.name)

    def cleanup(self) -> None:
        remove_service_objects(self.client, self.name)


class EngineEvents:
    """Engine events between ``start()`` and ``stop()`` (e.g. to prove that nothing was pulled)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.since = 0.0
        self.until = 0.0

    def start(self) -> "EngineEvents":
        self.since = time.time()
        return self

    def stop(self) -> "EngineEvents":
        self.until = time.time() + 0.5
        return self

    def of(self, kind: str, action: str | None = None) -> list[dict[str, Any]]:
        filters: dict[str, Any] = {"type": kind}
        if action:
            filters["event"] = action
        return list(self.client.events(since=self.since, until=self.until, filters=filters, decode=True))


# --------------------------------------------------------------------------------------------- registry

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


class Registry:
    """The lab registry's HTTP API, with its CA and credentials: the ground truth for digests, and moving tags."""

    def __init__(self, lab: Any) -> None:
        self.base = f"https://{lab.registry}/v2"
        self.session = requests.Session()
        self.session.auth = (lab.registry_username, lab.registry_password)
        self.session.verify = str(lab.ca_cert)
        self.session.trust_env = False

    def point_tag(self, path: str, tag: str, digest: str) -> None:
        """Make ``path:tag`` name the manifest ``digest`` (what a `docker push` of that build would do)."""
        got = self.session.get(f"{self.base}/{path}/manifests/{digest}", headers={"Accept": MANIFEST_V2}, timeout=10)
        got.raise_for_status()
        put = self.session.put(f"{self.base}/{path}/manifests/{tag}", data=got.content,
                               headers={"Content-Type": MANIFEST_V2}, timeout=10)
        assert put.status_code == 201, put.text
        assert put.headers["Docker-Content-Digest"] == digest

    def tag_digest(self, path: str, tag: str) -> str:
        """The digest the registry itself gives for ``path:tag`` (an index's own digest for a multi-platform tag)."""
        head = self.session.head(f"{self.base}/{path}/manifests/{tag}",
                                 headers={"Accept": f"{MANIFEST_V2}, {MANIFEST_LIST}"}, timeout=10)
        head.raise_for_status()
        return str(head.headers["Docker-Content-Digest"])

    def index(self, path: str, reference: str) -> dict[str, Any]:
        got = self.session.get(f"{self.base}/{path}/manifests/{reference}", headers={"Accept": MANIFEST_LIST},
                               timeout=10)
        got.raise_for_status()
        data: dict[str, Any] = got.json()
        return data
