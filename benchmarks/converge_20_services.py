"""Benchmark: idempotent converge of 20 services, each with a named volume, on one lab node.

    python benchmarks/converge_20_services.py [--via ssh|docker_host] [--node node1] [--repeat 3] [--keep]

Compares the second (idempotent, changes nothing) run of
  (a) dockhand.containers.stack: one task for all 20 services,
  (b) dockhand.containers.service: one task looped over the 20 services,
  (c) community.docker.docker_volume + docker_container looped over the 20 (the same settings), and
  (d) a bare `ansible -m ping` on the same host,
and prints the seconds and the ratios stack/community (target <= 0.10) and stack/ping (target <= 2).

--via ssh (default) runs the modules on the node over SSH, as a user would; --via docker_host runs them on this
machine against the node's engine socket. community.docker comes from the `ansible` package installed in a
separate venv under ~/.cache/dockhand-bench/ (made on first use): it is a point of comparison, never a dependency
of the collection. All four are run with that venv's ansible-core (2.19, the project's pin), so only the modules
differ. The lab must be up (python tests/lab/lab.py up). Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
from labstate import LabState, Node, load_state  # noqa: E402

BENCH_DIR = Path.home() / ".cache" / "dockhand-bench"
BENCH_VENV = BENCH_DIR / "venv"
# ansible 12 is the community package built on ansible-core 2.19, the core the project pins.
BENCH_REQUIREMENTS = ["ansible>=12,<13", "ansible-core==2.19.14", "docker==7.1.0", "requests"]
COUNT = 20
TARGET_VS_COMMUNITY = 0.10
TARGET_VS_PING = 2.0
PREFIXES = ("bench-stack-", "bench-svc-", "bench-cd-")


def ensure_bench_venv() -> Path:
    """The separate venv with the `ansible` package (community.docker); created once, reused after."""
    ansible = BENCH_VENV / "bin" / "ansible-playbook"
    stamp = BENCH_VENV / "requirements.stamp"
    wanted = "\n".join(BENCH_REQUIREMENTS)
    if ansible.exists() and stamp.exists() and stamp.read_text() == wanted:
        return BENCH_VENV / "bin"
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    print(f"installing {', '.join(BENCH_REQUIREMENTS)} into {BENCH_VENV} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    *BENCH_REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return BENCH_VENV / "bin"


def services(prefix: str, lab: LabState) -> list[dict[str, Any]]:
    return [{"name": f"{prefix}{i:02d}", "volume": f"{prefix}{i:02d}-data", "image": lab.images["v1"].pinned}
            for i in range(1, COUNT + 1)]


def playbooks(lab: LabState, host: str, via: str, node: Node) -> dict[str, str]:
    """The three converge playbooks; the same spec each time: v1 by digest, a named volume at /data,
    restart on-failure 5, json-file logs rotating at 10m x 3, the image's health check."""
    if via == "docker_host":
        connection = {"docker_host": node.docker_host}
        registry = {"registry_username": lab.registry_username, "registry_password": lab.registry_password}
    else:
        connection, registry = {}, {}  # the node's own engine socket and docker config
    stack_services = [dict(name=s["name"], image=s["image"], volumes=[f"{s['volume']}:/data"])
                      for s in services("bench-stack-", lab)]
    stack = [{"name": "Converge 20 services with dockhand.containers.stack", "hosts": host, "gather_facts": False,
              "tasks": [{"name": "Converge the stack", "dockhand.containers.stack": dict(
                  name="bench", services=stack_services, **connection, **registry)}]}]
    loop = [{"name": "Converge 20 services with dockhand.containers.service", "hosts": host, "gather_facts": False,
             "tasks": [{"name": "Converge each service", "loop": services("bench-svc-", lab),
                        "dockhand.containers.service": dict(
                            name="{{ item.name }}", image="{{ item.image }}", volumes=["{{ item.volume }}:/data"],
                            **connection, **registry)}]}]
    community_connection = {"docker_host": node.docker_host} if via == "docker_host" else {}
    community = [{"name": "Converge 20 services with community.docker", "hosts": host, "gather_facts": False,
                  "tasks": [
                      {"name": "Create each volume", "loop": services("bench-cd-", lab),
                       "community.docker.docker_volume": dict(name="{{ item.volume }}", **community_connection)},
                      {"name": "Run each container", "loop": services("bench-cd-", lab),
                       "community.docker.docker_container": dict(
                           name="{{ item.name }}", image="{{ item.image }}", state="started",
                           mounts=[{"source": "{{ item.volume }}", "target": "/data", "type": "volume"}],
                           restart_policy="on-failure", restart_retries=5, log_driver="json-file",
                           log_options={"max-size": "10m", "max-file": "3"}, **community_connection)},
                  ]}]
    return {"stack": json.dumps(stack), "service loop": json.dumps(loop), "community.docker": json.dumps(community)}


class Runner:
    def __init__(self, bin_dir: Path, inventory: Path, host: str, work: Path) -> None:
        self.bin_dir, self.inventory, self.host, self.work = bin_dir, inventory, host, work
        self.env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")

    def playbook(self, label: str, text: str) -> tuple[float, int]:
        """Run a playbook; return (seconds, tasks changed on the host)."""
        path = self.work / (re.sub(r"\W+", "-", label) + ".yml")
        path.write_text(text)
        command = [str(self.bin_dir / "ansible-playbook"), "-i", str(self.inventory), str(path)]
        return self._timed(command, label)

    def ping(self) -> tuple[float, int]:
        command = [str(self.bin_dir / "ansible"), "-i", str(self.inventory), self.host, "-m", "ansible.builtin.ping"]
        return self._timed(command, "ping")

    def _timed(self, command: list[str], label: str) -> tuple[float, int]:
        start = time.monotonic()
        proc = subprocess.run(command, cwd=REPO, env=self.env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(f"{label} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
        recap = re.search(rf"^{re.escape(self.host)}\s*:.*changed=(\d+)", proc.stdout, re.M)
        return elapsed, int(recap.group(1)) if recap else 0


def cleanup(node: Node) -> None:
    client = node.client()
    try:
        for container in client.containers.list(all=True):
            if container.name.startswith(PREFIXES):
                container.remove(force=True)
        for volume in client.volumes.list():
            if volume.name.startswith(PREFIXES):
                volume.remove(force=True)
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--via", choices=("ssh", "docker_host"), default="ssh")
    parser.add_argument("--node", default="node1")
    parser.add_argument("--repeat", type=int, default=3, help="timed idempotent runs of each (median is reported)")
    parser.add_argument("--keep", action="store_true", help="leave the 60 containers and volumes on the node")
    options = parser.parse_args()

    lab = load_state()
    if lab is None or not lab.complete:
        raise SystemExit("the lab is not up: python tests/lab/lab.py up")
    node = lab.node(options.node)
    bin_dir = ensure_bench_venv()
    host = node.name if options.via == "ssh" else "localhost"
    if options.via == "docker_host":
        # localhost's python must be the bench venv's (it has the docker SDK for our modules).
        inventory_text = json.dumps({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": str(bin_dir / "python")}}}})
    else:
        inventory_text = lab.inventory.read_text()

    cleanup(node)
    with tempfile.TemporaryDirectory(prefix="dockhand-bench-") as tmp:
        work = Path(tmp)
        inventory = work / ("inventory.json" if options.via == "docker_host" else "inventory.yml")
        inventory.write_text(inventory_text)
        runner = Runner(bin_dir, inventory, host, work)
        books = playbooks(lab, host, options.via, node)
        print(f"20 services with a named volume each on {node.name}, modules reached via {options.via}; "
              f"ansible-core from {BENCH_VENV}", flush=True)
        try:
            for label, text in books.items():
                seconds, changed = runner.playbook(label, text)
                print(f"  first run   {label:17s} {seconds:6.2f} s  ({changed} task(s) changed)", flush=True)
            timings: dict[str, list[float]] = {label: [] for label in [*books, "ping"]}
            for _repetition in range(options.repeat):
                for label, text in books.items():
                    seconds, changed = runner.playbook(label, text)
                    if changed:
                        raise SystemExit(f"{label}: the second run changed {changed} task(s); not idempotent")
                    timings[label].append(seconds)
                timings["ping"].append(runner.ping()[0])
        finally:
            if not options.keep:
                cleanup(node)

    median = {label: statistics.median(values) for label, values in timings.items()}
    print(f"\nidempotent run, median of {options.repeat} (all runs in s):")
    for label, values in timings.items():
        print(f"  {label:17s} {median[label]:6.2f} s   {' '.join(f'{v:.2f}' for v in values)}")
    vs_community = median["stack"] / median["community.docker"]
    vs_ping = median["stack"] / median["ping"]
    print(f"\nstack / community.docker = {vs_community:.3f}  (target <= {TARGET_VS_COMMUNITY:.2f}: "
          f"{'met' if vs_community <= TARGET_VS_COMMUNITY else 'NOT met'})")
    print(f"stack / ping             = {vs_ping:.2f}   (target <= {TARGET_VS_PING:.1f}: "
          f"{'met' if vs_ping <= TARGET_VS_PING else 'NOT met'})")
    print(f"service loop / stack     = {median['service loop'] / median['stack']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
