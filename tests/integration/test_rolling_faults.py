"""Scenario: the rolling deploy (deploy.yml, as users run it) across spare nodes behind an haproxy of their own,
when the world moves under it: a tag moved in the registry between two batches, a node's engine stopping
mid-roll, a node's sshd stopping mid-roll, the canary's own engine stopping in the middle of its swap, and the
re-run once the node is back.

The spare nodes (``dockhand-spare1..3``, tests/lab/lab.py ``up_spares``) are made for this module and removed
after it: the shared nodes and haproxy are never stopped. Assertions read the nodes' engines, the haproxy
runtime state, the lock and audit files on the nodes (through ``docker exec``, not SSH) and the registry.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
from conftest import LAB_PY, HaproxyAdmin, LabState, PlaybookResult, RunPlaybook

sys.path.insert(0, str(LAB_PY.parent))
from lab import Lab, SpareSet  # noqa: E402

pytestmark = [pytest.mark.lab, pytest.mark.slow]
# Spare nodes and an haproxy of its own: runs beside the per-node passes (tests/integration/conftest.py).
LAB_GROUP = "spare"

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy.yml"
STACK = "flt"
SERVICE = "flt-web"
MOVING_TAG = "flt-moving"
LOCK = "/var/lib/dockhand/deploy.lock"
AUDIT = "/var/log/dockhand/audit.jsonl"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
FAIL_TASK = "Fail the hosts the run rolled back, could not roll back, lost or did not reach"


@pytest.fixture(scope="module")
def spare_lab(lab: LabState) -> Iterator[Lab]:
    yield Lab(lab.dir)


@pytest.fixture(scope="module")
def spares(spare_lab: Lab) -> Iterator[SpareSet]:
    """Three fresh spare nodes and their haproxy, shared by the module's tests, removed afterwards."""
    made = spare_lab.up_spares(3)
    yield made
    spare_lab.down_spares()


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's controller-side run journal (one controller: every run of the module)."""
    return tmp_path_factory.mktemp("flt-journal")


@pytest.fixture(scope="module")
def inventory(lab: LabState, spares: SpareSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return spares.write_inventory(lab.ssh_private_key, tmp_path_factory.mktemp("flt-inventory") / "hosts.yml")


def stack_vars(lab: LabState, image: str, journal: Path, **more: Any) -> dict[str, Any]:
    return {
        "deploy_stack_name": STACK,
        "deploy_services": [{"name": SERVICE, "image": image, "ports": ["0.0.0.0:8080:8080"],
                             "restart_policy": "on-failure", "restart_retries": 3, "wait": "healthy"}],
        "deploy_registry_username": lab.registry_username,
        "deploy_registry_password": lab.registry_password,
        "rolling_update_journal_path": str(journal),
        **more,
    }


def haproxy_vars(spares: SpareSet) -> dict[str, Any]:
    return {"rolling_update_lb": "haproxy", "rolling_update_haproxy_socket": str(spares.haproxy_socket),
            "rolling_update_haproxy_backend": "app", "rolling_update_haproxy_host": "localhost",
            "rolling_update_ready_timeout": 20, "rolling_update_drain_timeout": 20}


# --------------------------------------------------------------------------------------------- facts


def running_image(spares: SpareSet, name: str) -> str | None:
    """The image reference the node's engine runs flt-web from (None: no such container or no engine)."""
    node = next(n for n in spares.nodes if n.name == name)
    try:
        client = node.client(timeout=10)
    except docker.errors.DockerException:
        return None
    try:
        container = client.containers.get(SERVICE)
        return str(container.attrs["Config"]["Image"]) if container.status == "running" else None
    except docker.errors.NotFound:
        return None
    finally:
        client.close()


def node_file(spare_lab: Lab, spares: SpareSet, name: str, path: str) -> str | None:
    """A file on the node, read through docker exec (works with the node's sshd or engine down)."""
    container = spare_lab.client.containers.get(f"dockhand-{name}")
    code, output = container.exec_run(["cat", path])
    return output.decode() if code == 0 else None


def audit(spare_lab: Lab, spares: SpareSet, name: str) -> list[dict[str, Any]]:
    text = node_file(spare_lab, spares, name, AUDIT) or ""
    return [json.loads(line) for line in text.splitlines()]


def lock(spare_lab: Lab, spares: SpareSet, name: str) -> dict[str, Any] | None:
    text = node_file(spare_lab, spares, name, LOCK)
    return json.loads(text) if text else None


def admin_states(spares: SpareSet) -> dict[str, str]:
    """Server -> administrative state (ready, drain, maint), from haproxy's own runtime API."""
    api = HaproxyAdmin(spares.haproxy_socket)
    states = {}
    for line in api.command("show servers state app").splitlines()[2:]:
        fields = line.split()
        if len(fields) > 6:
            bits = int(fields[6])
            states[fields[3]] = "maint" if bits & 0x01 else "drain" if bits & 0x08 else "ready"
    return states


def registry_digest(lab: LabState, tag: str) -> str:
    response = requests.head(f"https://{lab.registry}/v2/dockhand/app/manifests/{tag}", headers={"Accept": MANIFEST},
                             auth=(lab.registry_username, lab.registry_password), verify=str(lab.ca_cert), timeout=10)
    response.raise_for_status()
    return str(response.headers["Docker-Content-Digest"])


def move_tag(lab: LabState, tag: str, to: str) -> None:
    """Point ``app:tag`` at the manifest of ``app:to`` (a push of the same manifest under another tag)."""
    auth, ca = (lab.registry_username, lab.registry_password), str(lab.ca_cert)
    base = f"https://{lab.registry}/v2/dockhand/app/manifests"
    manifest = requests.get(f"{base}/{to}", headers={"Accept": MANIFEST}, auth=auth, verify=ca, timeout=10)
    manifest.raise_for_status()
    put = requests.put(f"{base}/{tag}", data=manifest.content, headers={"Content-Type": MANIFEST}, auth=auth,
                       verify=ca, timeout=10)
    put.raise_for_status()


def deploy(run_playbook: RunPlaybook, inventory: Path, variables: dict[str, Any]) -> PlaybookResult:
    return run_playbook(DEPLOY, inventory=inventory, extra_vars=variables, env={"ANSIBLE_TIMEOUT": "10"})


def fleet_on(lab: LabState, run_playbook: RunPlaybook, inventory: Path, spares: SpareSet, journal: Path,
             version: str) -> None:
    """Every spare node runs ``version`` (a quick no-op when it already does)."""
    pinned = lab.images[version].pinned
    if all(running_image(spares, node.name) == pinned for node in spares.nodes):
        return
    deploy(run_playbook, inventory, stack_vars(lab, pinned, journal, **haproxy_vars(spares),
                                               rolling_update_serial="3")).assert_ok()


def assert_converged(spares: SpareSet, spare_lab: Lab, pinned: str) -> None:
    """Every spare node runs ``pinned``, holds no deploy lock, and is ready in haproxy."""
    for node in spares.nodes:
        assert running_image(spares, node.name) == pinned, node.name
        assert lock(spare_lab, spares, node.name) is None, node.name
    assert admin_states(spares) == {node.name: "ready" for node in spares.nodes}


@contextlib.contextmanager
def once(condition: Callable[[], bool], fault: Callable[[], None], poll: float = 0.1) -> Iterator[threading.Event]:
    """Inject ``fault`` as soon as ``condition`` holds (polled in a thread while the block runs)."""
    fired, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def watch() -> None:
        while not stop.is_set():
            try:
                if condition():
                    fault()
                    fired.set()
                    return
            except Exception as exc:  # reported to the test below, not lost in the thread
                errors.append(exc)
                return
            stop.wait(poll)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield fired
    finally:
        stop.set()
        thread.join(timeout=120)
    if errors:
        raise errors[0]


def once_drained(spares: SpareSet, server: str,
                 fault: Callable[[], None]) -> contextlib.AbstractContextManager[threading.Event]:
    """Inject ``fault`` as soon as haproxy shows ``server`` drained: the roll is under way, on that host."""
    return once(lambda: admin_states(spares).get(server) == "drain", fault)


# --------------------------------------------------------------------------------------------- tests


def test_a_tag_moved_between_batches_leaves_every_host_on_the_digest_resolved_first(
        lab: LabState, run_playbook: RunPlaybook, inventory: Path, spares: SpareSet, spare_lab: Lab,
        journal: Path, tmp_path: Path) -> None:
    move_tag(lab, MOVING_TAG, "v1")
    # The load balancer hook moves the tag to v2 once the first host is back in service, before the second batch.
    mover, log = tmp_path / "move_tag.py", tmp_path / "hook.log"
    mover.write_text(f"""import requests
auth, ca = ({lab.registry_username!r}, {lab.registry_password!r}), {str(lab.ca_cert)!r}
base = "https://{lab.registry}/v2/dockhand/app/manifests"
manifest = requests.get(base + "/v2", headers={{"Accept": {MANIFEST!r}}}, auth=auth, verify=ca, timeout=10)
manifest.raise_for_status()
requests.put(base + "/{MOVING_TAG}", data=manifest.content, headers={{"Content-Type": {MANIFEST!r}}}, auth=auth,
             verify=ca, timeout=10).raise_for_status()
""")
    hook = tmp_path / "lb.yml"
    hook.write_text(f"""
- name: Log the load balancer action
  ansible.builtin.lineinfile:
    path: {log}
    line: "{{{{ inventory_hostname }}}} {{{{ rolling_update_lb_action }}}}"
    create: true
    mode: "0644"
  delegate_to: localhost
- name: Move the tag in the registry after the first batch
  ansible.builtin.command: "{{{{ ansible_playbook_python }}}} {mover}"
  delegate_to: localhost
  changed_when: true
  when: rolling_update_lb_action == 'ready' and inventory_hostname == 'spare1'
- name: Log the move
  ansible.builtin.lineinfile:
    path: {log}
    line: moved
  delegate_to: localhost
  when: rolling_update_lb_action == 'ready' and inventory_hostname == 'spare1'
""")
    tagged = f"{lab.registry}/dockhand/app:{MOVING_TAG}"
    deploy(run_playbook, inventory, stack_vars(lab, tagged, journal, rolling_update_lb="tasks",
                                               rolling_update_lb_tasks=str(hook))).assert_ok()

    v1, v2 = lab.images["v1"], lab.images["v2"]
    assert log.read_text().split("\n")[:-1] == ["spare1 drain", "spare1 ready", "moved", "spare2 drain",
                                                "spare2 ready", "spare3 drain", "spare3 ready"]
    assert registry_digest(lab, MOVING_TAG) == v2.digest, "the tag did not move"
    for node in spares.nodes:
        assert running_image(spares, node.name) == v1.pinned, node.name
        [entry] = audit(spare_lab, spares, node.name)
        assert (entry["result"], entry["services"]) == ("updated", [{"name": SERVICE, "old": None, "new": v1.pinned}])


def test_a_node_engine_stopped_mid_roll_stops_the_run_says_so_and_a_rerun_after_it_is_back_converges(
        lab: LabState, run_playbook: RunPlaybook, inventory: Path, spares: SpareSet, spare_lab: Lab,
        journal: Path) -> None:
    fleet_on(lab, run_playbook, inventory, spares, journal, "v1")
    v1, v2 = lab.images["v1"], lab.images["v2"]
    spare2 = spares.nodes[1]
    before = {node.name: len(audit(spare_lab, spares, node.name)) for node in spares.nodes}
    variables = stack_vars(lab, v2.tagged, journal, **haproxy_vars(spares))

    # spare2's engine stops while spare1, the canary, is being updated: the run reaches spare2 with its sshd up
    # and its engine gone.
    with once_drained(spares, "spare1", lambda: spare_lab.stop_engine(spare2)) as fired:
        result = deploy(run_playbook, inventory, variables).assert_failed()
    assert fired.is_set(), result.describe()

    assert running_image(spares, "spare1") == v2.pinned
    assert running_image(spares, "spare3") == v1.pinned, "a host after the failed one was touched"
    assert admin_states(spares) == {"spare1": "ready", "spare2": "drain", "spare3": "ready"}
    [entry] = audit(spare_lab, spares, "spare2")[before["spare2"]:]
    assert entry["result"] == "failed", entry
    assert entry["services"] == [{"name": SERVICE, "old": v1.pinned, "new": "unknown"}]
    assert "left drained in the load balancer" in entry["note"] and "what runs now could not be read" in entry["note"]
    [skipped] = audit(spare_lab, spares, "spare3")[before["spare3"]:]
    assert skipped["result"] == "not_reached" and "spare2 failed or was lost" in skipped["note"]
    held = lock(spare_lab, spares, "spare2")
    assert held is not None and held["run_id"] == entry["run_id"], "the failed host's lock should say who left it"
    assert lock(spare_lab, spares, "spare1") is None and lock(spare_lab, spares, "spare3") is None
    said = result.task(FAIL_TASK, host="spare2")["msg"]
    assert "haproxy server app/spare2 is left drain (the host was not verified" in said, said
    assert f"its deploy lock (run {entry['run_id']}) stays on it" in said, said

    spare_lab.start_engine(spare2)
    deploy(run_playbook, inventory, variables).assert_ok()
    assert_converged(spares, spare_lab, v2.pinned)
    [recovered] = audit(spare_lab, spares, "spare2")[before["spare2"] + 1:]
    assert recovered["result"] == "updated", recovered
    assert recovered["services"] == [{"name": SERVICE, "old": v1.pinned, "new": v2.pinned}]
    assert f"took over the deploy lock of run {entry['run_id']}" in recovered["note"], recovered
    assert "its ansible-playbook process" in recovered["note"] and "is gone" in recovered["note"], recovered
    assert len(audit(spare_lab, spares, "spare1")) == before["spare1"] + 1, "the up-to-date canary was logged again"


def test_a_node_sshd_stopped_mid_roll_stops_the_run_says_so_and_a_rerun_after_it_is_back_converges(
        lab: LabState, run_playbook: RunPlaybook, inventory: Path, spares: SpareSet, spare_lab: Lab,
        journal: Path) -> None:
    fleet_on(lab, run_playbook, inventory, spares, journal, "v2")
    v1, v2 = lab.images["v1"], lab.images["v2"]
    spare2 = spares.nodes[1]
    before = {node.name: len(audit(spare_lab, spares, node.name)) for node in spares.nodes}
    variables = stack_vars(lab, v1.tagged, journal, **haproxy_vars(spares))

    with once_drained(spares, "spare1", lambda: spare_lab.stop_sshd(spare2)) as fired:
        result = deploy(run_playbook, inventory, variables).assert_failed()
    assert fired.is_set(), result.describe()

    assert running_image(spares, "spare1") == v1.pinned
    assert running_image(spares, "spare2") == v2.pinned, "the lost host changed"
    assert running_image(spares, "spare3") == v2.pinned, "a host after the lost one was touched"
    assert admin_states(spares) == {"spare1": "ready", "spare2": "drain", "spare3": "ready"}
    held = lock(spare_lab, spares, "spare2")
    assert held is not None, "the lost host's lock is the evidence of the unfinished run"
    run_id = held["run_id"]
    assert len(audit(spare_lab, spares, "spare2")) == before["spare2"]
    skipped = audit(spare_lab, spares, "spare3")[before["spare3"]:]
    assert len(skipped) == 1, result.describe()
    assert skipped[0]["result"] == "not_reached" and "spare2 failed or was lost" in skipped[0]["note"]
    assert lock(spare_lab, spares, "spare1") is None and lock(spare_lab, spares, "spare3") is None
    said = result.task(FAIL_TASK, host="spare2")["msg"]
    assert said.startswith("spare2: lost: lost mid-roll (unreachable)"), said
    assert "haproxy server app/spare2 is left drain (the host was not verified" in said, said
    assert f"its deploy lock (run {run_id}) stays on it" in said, said
    recorded = json.loads((journal / f"{run_id}.json").read_text())
    assert recorded["lost"]["spare2"].startswith("lost mid-roll") and "left drain" in recorded["lost"]["spare2"]

    spare_lab.start_sshd(spare2)
    deploy(run_playbook, inventory, variables).assert_ok()
    assert_converged(spares, spare_lab, v1.pinned)
    [recovered] = audit(spare_lab, spares, "spare2")[before["spare2"]:]
    assert recovered["result"] == "updated", recovered
    assert recovered["services"] == [{"name": SERVICE, "old": v2.pinned, "new": v1.pinned}]
    assert f"took over the deploy lock of run {run_id}" in recovered["note"], recovered
    assert "that run reported: lost mid-roll" in recovered["note"], recovered


def swap_started(spares: SpareSet, name: str) -> bool:
    """The node's engine holds the replacement container of flt-web's swap (dockhand.containers.service's
    ``<name>-dockhand-next``, or the service already renamed from it): its converge is under way."""
    node = next(n for n in spares.nodes if n.name == name)
    try:
        client = node.client(timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        names = {c.name for c in client.containers.list(all=True, ignore_removed=True)}
        return f"{SERVICE}-dockhand-next" in names or f"{SERVICE}-dockhand-prev" in names
    except docker.errors.DockerException:
        return False
    finally:
        client.close()


def test_a_node_engine_stopped_during_its_own_converge_leaves_it_reported_and_a_rerun_converges(
        lab: LabState, run_playbook: RunPlaybook, inventory: Path, spares: SpareSet, spare_lab: Lab,
        journal: Path) -> None:
    fleet_on(lab, run_playbook, inventory, spares, journal, "v1")
    v1, v2 = lab.images["v1"], lab.images["v2"]
    spare1 = spares.nodes[0]
    before = {node.name: len(audit(spare_lab, spares, node.name)) for node in spares.nodes}
    variables = stack_vars(lab, v2.tagged, journal, **haproxy_vars(spares))

    # The canary's engine stops in the middle of its own swap (its replacement container exists).
    with once(lambda: swap_started(spares, "spare1"), lambda: spare_lab.stop_engine(spare1), poll=0.05) as fired:
        result = deploy(run_playbook, inventory, variables).assert_failed()
    assert fired.is_set(), result.describe()

    assert running_image(spares, "spare2") == v1.pinned and running_image(spares, "spare3") == v1.pinned, \
        "a host after the failed canary was touched"
    assert admin_states(spares) == {"spare1": "drain", "spare2": "ready", "spare3": "ready"}
    [entry] = audit(spare_lab, spares, "spare1")[before["spare1"]:]
    assert entry["result"] == "failed", entry
    assert "left drained in the load balancer" in entry["note"], entry
    held = lock(spare_lab, spares, "spare1")
    assert held is not None and held["run_id"] == entry["run_id"], "the failed host's lock should say who left it"
    for name in ("spare2", "spare3"):
        [skipped] = audit(spare_lab, spares, name)[before[name]:]
        assert skipped["result"] == "not_reached" and "spare1 failed or was lost" in skipped["note"], skipped
        assert lock(spare_lab, spares, name) is None, name
    said = result.task(FAIL_TASK, host="spare1")["msg"]
    assert "haproxy server app/spare1 is left drain" in said and f"its deploy lock (run {entry['run_id']}) stays" in said, said

    # The engine comes back with the swap cut in the middle; the next run takes the host over and converges.
    spare_lab.start_engine(spare1)
    deploy(run_playbook, inventory, variables).assert_ok()
    assert_converged(spares, spare_lab, v2.pinned)
    [recovered] = audit(spare_lab, spares, "spare1")[before["spare1"] + 1:]
    assert recovered["result"] == "updated", recovered
    assert f"took over the deploy lock of run {entry['run_id']}" in recovered["note"], recovered
    client = spare1.client(timeout=10)
    try:
        leftovers = sorted(c.name for c in client.containers.list(all=True) if c.name.startswith(SERVICE))
    finally:
        client.close()
    assert leftovers == [SERVICE], "the swap left containers behind: %s" % leftovers
