"""Fixtures every integration test uses: the lab, real ansible-playbook runs, and small probes.

- ``lab`` (session): a :class:`labstate.LabState` read from ``$DOCKHAND_LAB_DIR/state.json``; brings the lab up
  first (``tests/lab/lab.py up`` in a subprocess) when it is not up and healthy.
- ``run_playbook``: runs the real ``ansible-playbook`` against the lab inventory and returns a
  :class:`PlaybookResult` with every task's result, recorded by ``callback_plugins/dockhand_recorder.py``.
- ``haproxy``: the lab load balancer's runtime API (server states, drain/ready).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / "tests" / "lab" / "lab.py"
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
COLLECTIONS = REPO / ".cache" / "collections"
COLLECTION_LINK = COLLECTIONS / "ansible_collections" / "dockhand" / "containers"

sys.path.insert(0, str(REPO / "tests" / "lab"))
from labstate import ImageInfo, LabState, Node, lab_dir, load_state  # noqa: E402

__all__ = ["HaproxyAdmin", "ImageInfo", "LabState", "Node", "PlaybookResult", "TaskRecord", "http_get"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the lab (tests/lab/lab.py up): its nodes, registry or haproxy")
    config.addinivalue_line("markers", "slow: takes more than ~30 s (rolling updates, load, big volumes)")
    config.addinivalue_line("markers", "serial: works beyond one lab node, so runs with no other test beside it")
    for number in (1, 2, 3):
        config.addinivalue_line("markers", "node%d: works on lab node %d only (module-level NODE_INDEX)" % (number, number))
    config.addinivalue_line("markers", "spare: works on spare nodes and an haproxy of its own only (LAB_GROUP)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark which lab node each test works on, so ``.ci/run`` can run the nodes side by side.

    A module working on one node (module-level ``NODE_INDEX``) gets that node's marker (``node1``..``node3``);
    ``.ci/run`` runs one pytest per node at the same time, so engine-wide observations of a node (its events, a
    restart of its engine) never see another module's work. A module that brings its own spare nodes and
    haproxy (module-level ``LAB_GROUP = "spare"``) is marked ``spare`` and runs beside the node passes. Every
    other module (several shared nodes over SSH, the lab's haproxy, the outer engine) is marked ``serial`` and
    runs afterwards with nothing beside it.
    """
    for item in items:
        module = getattr(item, "module", None)
        index = getattr(module, "NODE_INDEX", None)
        if getattr(module, "LAB_GROUP", None) == "spare":
            item.add_marker(pytest.mark.spare)
        elif index is None:
            item.add_marker(pytest.mark.serial)
        else:
            item.add_marker(getattr(pytest.mark, "node%d" % (index + 1)))


# --------------------------------------------------------------------------------------------- the lab


def _lab_answers(state: LabState) -> bool:
    """A cheap health check (no SSH): registry, every node engine and haproxy answer."""
    if not state.complete or len(state.nodes) != 3:
        return False
    for node in state.nodes:
        try:
            # docker.DockerClient negotiates the API version on creation, so a node that is down fails here.
            client = node.client(timeout=3)
        except Exception:  # not answering, whatever the reason: let lab.py repair it
            return False
        try:
            client.ping()
        except Exception:  # not answering, whatever the reason: let lab.py repair it
            return False
        finally:
            client.close()
    return state.haproxy_socket.is_socket() and _registry_answers(state)


def _registry_answers(state: LabState) -> bool:
    try:
        http_get(f"https://{state.registry}/v2/", cafile=state.ca_cert)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False
    return False


@pytest.fixture(scope="session")
def lab() -> LabState:
    """The running lab, brought up (or repaired) first when needed."""
    state = load_state()
    if state is None or not _lab_answers(state):
        proc = subprocess.run(
            [sys.executable, str(LAB_PY), "up"], capture_output=True, text=True, timeout=900, check=False
        )
        if proc.returncode != 0:
            pytest.fail(f"`lab.py up` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}", pytrace=False)
        state = load_state()
        if state is None:
            pytest.fail(f"`lab.py up` succeeded but wrote no state in {lab_dir()}:\n{proc.stdout}", pytrace=False)
    return state


# --------------------------------------------------------------------------------------------- playbooks


@dataclass(frozen=True)
class TaskRecord:
    """One task's result on one host, as the recorder callback saw it."""

    name: str
    host: str
    status: str  # ok | changed | failed | skipped | unreachable
    action: str
    result: dict[str, Any]
    ignore_errors: bool = False


@dataclass
class PlaybookResult:
    """What one ansible-playbook run did. Use :meth:`describe` in assertion messages."""

    command: list[str]
    rc: int
    stdout: str
    stderr: str
    stats: dict[str, dict[str, int]]
    results: list[TaskRecord] = field(default_factory=list)

    def describe(self) -> str:
        """The command, its exit code and full output: for assertion messages."""
        return (
            f"$ {' '.join(self.command)}\nexit code {self.rc}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )

    def records(self, name: str, host: str | None = None) -> list[TaskRecord]:
        return [r for r in self.results if r.name == name and (host is None or r.host == host)]

    def task(self, name: str, host: str | None = None) -> dict[str, Any]:
        """The module's return for task ``name`` (on ``host``; required when the task ran on several hosts)."""
        found = self.records(name, host)
        if not found:
            seen = sorted({f"{r.name!r}@{r.host}" for r in self.results})
            raise AssertionError(f"no result for task {name!r} on {host or 'any host'}; recorded: {seen}\n{self.describe()}")
        if len(found) > 1:
            hosts = [r.host for r in found]
            raise AssertionError(f"task {name!r} has {len(found)} results (hosts {hosts}); pass host=")
        return found[0].result

    def changed_count(self, host: str | None = None) -> int:
        """Tasks reported changed in the recap (for one host, or summed over all)."""
        return sum(s["changed"] for h, s in self.stats.items() if host is None or h == host)

    def failed_count(self, host: str | None = None) -> int:
        return sum(s["failed"] + s["unreachable"] for h, s in self.stats.items() if host is None or h == host)

    def assert_ok(self) -> PlaybookResult:
        """Fail the test, with the full output, unless the run exited 0 with no failed or unreachable host."""
        assert self.rc == 0 and self.failed_count() == 0, f"playbook failed\n{self.describe()}"
        return self

    def assert_failed(self) -> PlaybookResult:
        assert self.rc != 0, f"playbook was expected to fail but succeeded\n{self.describe()}"
        return self

    def assert_unchanged(self, host: str | None = None) -> PlaybookResult:
        """Idempotence: the run succeeded and changed nothing."""
        self.assert_ok()
        changed = [f"{r.name}@{r.host}" for r in self.results if r.status == "changed" and host in (None, r.host)]
        assert not changed, f"expected no changes, but these tasks changed: {changed}\n{self.describe()}"
        return self


class RunPlaybook(Protocol):
    def __call__(
        self,
        playbook: str | Path,
        *,
        inventory: str | Path | None = ...,
        extra_vars: Mapping[str, Any] | None = ...,
        check: bool = ...,
        diff: bool = ...,
        limit: str | None = ...,
        env: Mapping[str, str] | None = ...,
        timeout: float = ...,
    ) -> PlaybookResult: ...


def _ensure_collection_link() -> None:
    """ansible.cfg finds dockhand.containers through this link; .ci/venv makes it, this covers a bare pytest run."""
    if not COLLECTION_LINK.exists():
        COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
        os.symlink("../../../..", COLLECTION_LINK)


def _ansible_playbook() -> str:
    beside_python = Path(sys.executable).parent / "ansible-playbook"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise RuntimeError("ansible-playbook not found: run the tests with the project venv (.ci/venv pytest ...)")
    return found


def _playbook_file(playbook: str | Path, directory: Path, counter: Iterator[int]) -> Path:
    """A path is used as is; any other string is YAML text, written to a file."""
    if isinstance(playbook, Path):
        return playbook
    if "\n" not in playbook:
        for candidate in (Path(playbook), REPO / playbook):
            if candidate.is_file():
                return candidate.resolve()
        if playbook.strip().endswith((".yml", ".yaml")):
            raise FileNotFoundError(f"playbook {playbook!r} not found (relative paths are tried from cwd and {REPO})")
    path = directory / f"playbook-{next(counter)}.yml"
    path.write_text(playbook)
    return path


def _read_records(path: Path) -> tuple[list[TaskRecord], dict[str, dict[str, int]]]:
    records: list[TaskRecord] = []
    stats: dict[str, dict[str, int]] = {}
    if not path.exists():
        return records, stats
    for line in path.read_text().splitlines():
        item = json.loads(line)
        if item["type"] == "stats":
            stats = item["stats"]
        else:
            records.append(
                TaskRecord(
                    name=item["task"],
                    host=item["host"],
                    status=item["status"],
                    action=item["action"],
                    result=item["result"],
                    ignore_errors=bool(item.get("ignore_errors", False)),
                )
            )
    return records, stats


@pytest.fixture
def run_playbook(lab: LabState, tmp_path: Path) -> RunPlaybook:
    """Run the real ansible-playbook; see :class:`RunPlaybook` for the signature."""
    _ensure_collection_link()
    counter = itertools.count(1)

    def run(
        playbook: str | Path,
        *,
        inventory: str | Path | None = None,
        extra_vars: Mapping[str, Any] | None = None,
        check: bool = False,
        diff: bool = False,
        limit: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 900,
    ) -> PlaybookResult:
        number = next(counter)
        recorder = tmp_path / f"recorded-{number}.jsonl"
        command = [_ansible_playbook(), "-i", str(inventory or lab.inventory)]
        if extra_vars:
            vars_file = tmp_path / f"extra-vars-{number}.json"
            vars_file.write_text(json.dumps(dict(extra_vars)))
            command += ["-e", f"@{vars_file}"]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if limit:
            command += ["--limit", limit]
        command.append(str(_playbook_file(playbook, tmp_path, counter)))

        run_env = dict(os.environ)
        config = REPO / "ansible.cfg"
        if config.exists():
            run_env["ANSIBLE_CONFIG"] = str(config)
        else:
            run_env["ANSIBLE_COLLECTIONS_PATH"] = str(COLLECTIONS)
        enabled = [c for c in run_env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
        run_env.update(
            ANSIBLE_CALLBACK_PLUGINS=os.pathsep.join(filter(None, [str(CALLBACK_DIR), run_env.get("ANSIBLE_CALLBACK_PLUGINS")])),
            ANSIBLE_CALLBACKS_ENABLED=",".join([*enabled, "dockhand_recorder"]),
            DOCKHAND_RECORDER_FILE=str(recorder),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            PATH=os.pathsep.join([str(Path(sys.executable).parent), run_env.get("PATH", "")]),
        )
        run_env.update(env or {})
        try:
            proc = subprocess.run(
                command, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=timeout, check=False
            )
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = -1
            stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr = f"ansible-playbook timed out after {timeout} s"
        records, stats = _read_records(recorder)
        return PlaybookResult(command=command, rc=rc, stdout=stdout, stderr=stderr, stats=stats, results=records)

    return run


# --------------------------------------------------------------------------------------------- probes


def http_get(url: str, *, timeout: float = 5, cafile: Path | None = None) -> str:
    """GET ``url`` directly (no proxy from the environment) and return the body; HTTP errors raise HTTPError."""
    import ssl

    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if cafile is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(cafile))))
    opener = urllib.request.build_opener(*handlers)
    with opener.open(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body.decode()


def wait_until(what: str, probe: Callable[[], bool], timeout: float = 30, interval: float = 0.5) -> None:
    """Poll ``probe`` until it is true; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return
        except Exception:  # a probe that raises means "not yet"
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class HaproxyAdmin:
    """haproxy's runtime API on the lab's admin socket (backend ``app``, servers node1..node3)."""

    socket_path: Path
    backend: str = "app"

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, str]:
        """Server -> status (UP, DOWN, MAINT, DRAIN, or transitional like 'UP 1/2')."""
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        result = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(",")))
            if fields.get("pxname") == self.backend and fields.get("svname") not in (None, "FRONTEND", "BACKEND"):
                result[fields["svname"]] = fields["status"]
        return result

    def set_state(self, server: str, state: str) -> None:
        """``state``: ready, drain or maint."""
        self.command(f"set server {self.backend}/{server} state {state}")


@pytest.fixture(scope="module")
def node(lab: LabState, request: pytest.FixtureRequest) -> Node:
    """The lab node a test module works on: its module-level NODE_INDEX (default 0), so modules spread over nodes."""
    return lab.nodes[getattr(request.module, "NODE_INDEX", 0)]


@pytest.fixture(scope="module")
def engine(node: Node) -> Iterator[Any]:
    """A Docker SDK client on that node's engine, for assertions on what the engine reports."""
    client = node.client()
    yield client
    client.close()


@pytest.fixture
def haproxy(lab: LabState) -> HaproxyAdmin:
    return HaproxyAdmin(lab.haproxy_socket)
