"""The lab's own lifecycle, run LAST in CI (`pytest tests/lab/test_lifecycle.py`, the final stage of .ci/run):

1. `lab.py up` on the running lab reuses everything ("warm") and the lab is still healthy;
2. `lab.py down` leaves nothing behind: no Docker object, process, file, certs.d entry or listening port.

It tears the lab down, so it only runs when this file is named on the pytest command line
(a plain `pytest tests/` never removes the lab under the other tests' feet).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import docker
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lab as labpy  # noqa: E402
from labstate import lab_dir  # noqa: E402

pytestmark = pytest.mark.lab

WARM_LIMIT_SECONDS = 20
LAB_PORTS = {labpy.REGISTRY_PORT, 2221, 2222, 2223, 18080, 18081, 18082, 18083}


@pytest.fixture(autouse=True)
def only_when_named(request: pytest.FixtureRequest) -> None:
    named = {Path(arg.split("::")[0]).resolve() for arg in request.config.args}
    if Path(__file__).resolve() not in named:
        pytest.skip("tears the lab down: runs only as `pytest tests/lab/test_lifecycle.py`")


def run_lab(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(HERE / "lab.py"), *args], capture_output=True, text=True, timeout=900, check=False
    )
    print(proc.stdout, proc.stderr, sep="\n")
    return proc


def test_up_on_a_running_lab_reuses_everything_and_it_stays_healthy() -> None:
    up = run_lab("up")
    assert up.returncode == 0, f"lab up failed:\n{up.stdout}\n{up.stderr}"
    summary = re.search(r"^lab up: (\w+) ([\d.]+) s$", up.stdout, re.MULTILINE)
    assert summary, up.stdout
    kind, seconds = summary.group(1), float(summary.group(2))
    print(f"warm lab up took {seconds:.1f} s")
    assert kind == "warm", f"expected every part of the running lab to be reused, got {kind!r}:\n{up.stdout}"
    assert seconds < WARM_LIMIT_SECONDS, up.stdout

    status = run_lab("status")
    assert status.returncode == 0, f"lab status reports something down:\n{status.stdout}"


def test_down_leaves_nothing_behind() -> None:
    down = run_lab("down")
    assert down.returncode == 0, f"lab down failed:\n{down.stdout}\n{down.stderr}"

    client = docker.from_env()
    try:
        label = {"label": f"{labpy.LABEL}=1"}
        containers = {c.name for c in client.containers.list(all=True, filters=label)}
        containers |= {c.name for c in client.containers.list(all=True) if c.name.startswith(("dockhand-node", "dockhand-lab"))}
        assert not containers, f"containers left: {containers}"
        volumes = {v.name for v in client.volumes.list(filters=label)}
        volumes |= {v.name for v in client.volumes.list() if v.name.startswith(("dockhand-node", "dockhand-lab"))}
        assert not volumes, f"volumes left: {volumes}"
        networks = {n.name for n in client.networks.list() if n.name == labpy.NETWORK or n.attrs.get("Labels", {}).get(labpy.LABEL)}
        assert not networks, f"networks left: {networks}"
        images = {i.short_id: i.tags for i in client.images.list(all=True, filters=label)}
        images |= {
            i.short_id: i.tags
            for i in client.images.list()
            if any(t.startswith((labpy.REGISTRY + "/", "dockhand-lab/")) for t in i.tags)
        }
        assert not images, f"images left: {images}"
        plugins = [p.name for p in client.plugins.list() if p.name.startswith("dockhand-lab")]
        assert not plugins, f"plugins left: {plugins}"
        plugin_volumes = [v.name for v in client.volumes.list() if str(v.attrs.get("Driver")).startswith("dockhand-lab")]
        assert not plugin_volumes, f"plugin volumes left: {plugin_volumes}"
        assert "dockhand-lab" not in str(client.info()["Plugins"]), "the engine still lists the lab's volume driver"
    finally:
        client.close()

    root = lab_dir()
    assert not root.exists(), f"state dir {root} left"
    assert not labpy.Paths(root).lock.exists(), "lock file left"
    assert not labpy.OUTER_CERTS_D.exists(), f"{labpy.OUTER_CERTS_D} left"
    daemons = []
    for pid in labpy.pids_naming(str(root)):
        cmdline = labpy.process_cmdline(pid)
        if cmdline and Path(cmdline[0]).name in ("docker-registry", "haproxy"):
            daemons.append(f"{pid}: {' '.join(cmdline)}")
    assert not daemons, f"lab daemons still running: {daemons}"
    listening = listening_ports() & LAB_PORTS
    assert not listening, f"lab ports still listening: {sorted(listening)}"


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state, read from /proc: no connection attempt, so no traffic to any address."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports
