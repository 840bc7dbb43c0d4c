"""Benchmark: a rolling update of the lab's three nodes under constant load, and an idempotent re-run.

    python benchmarks/rolling.py [--repeat 3]

With the example inventory (examples/inventory: the three nodes behind the lab's haproxy) and the
shipped playbook (deploy.yml), while tests/support/loadgen.py sends requests through haproxy:

1. roll v1 -> v2 and v2 -> v1 (--repeat times each way); for each roll print the failed requests
   (target 0), the playbook's wall time, and the sum over the hosts of (container start + time to
   healthy): from the new container's creation (the engine's Created) to when it is first seen
   healthy, polling each node's engine during the roll. Ratio roll/sum: target <= 1.3.
2. an idempotent deploy.yml (changes nothing) vs a bare `ansible docker_hosts -m ping`, alternated
   --repeat times, medians: ratio target <= 3.

Leaves v1 running on the nodes at the end and removes it with --cleanup. The lab must be up
(python tests/lab/lab.py up). Never run by the test suite.

--warmup N rolls a variant of the lab app that, like most real services, needs N seconds after its
start before it answers (its health check then runs every second): dockhand/app-warmupN:v1 and :v2,
built here FROM the lab's v1/v2 and pushed to the lab registry. The lab app itself turns healthy
about 2 s after its start, so its rolls measure mostly the rolling steps' own cost; this shows how
that fixed cost weighs against a service's own start.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
sys.path.insert(0, str(REPO / ".cache" / "collections"))
from labstate import LabState, load_state  # noqa: E402
from ansible_collections.dockhand.containers.plugins.module_utils._haproxy import RuntimeApi  # noqa: E402

INVENTORY = REPO / "examples" / "inventory"
SERVICE = "demo-web"
TARGET_ROLL = 1.3
TARGET_IDEMPOTENT = 3.0


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def environment() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return env


def timed(command: list[str], check: bool = True) -> float:
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=environment(), capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return took


REPO_NAME = "app"


def deploy(vars_file: Path, tag: str) -> float:
    return timed([tool("ansible-playbook"), "-i", str(INVENTORY), "deploy.yml", "-e", f"@{vars_file}",
                  "-e", f"dockhand_demo_image={{{{ dockhand_registry }}}}/dockhand/{REPO_NAME}:{tag}"])


def warmup_images(lab: LabState, seconds: int) -> str:
    """Push dockhand/app-warmup<seconds>:v1 and :v2 (the lab app, answering only ``seconds`` after its start)."""
    import io

    import docker

    client = docker.from_env()
    repo = f"{lab.registry}/dockhand/app-warmup{seconds}"
    auth = {"username": lab.registry_username, "password": lab.registry_password}
    for tag in ("v1", "v2"):
        dockerfile = (
            f"FROM {lab.images[tag].pinned}\n"
            f"HEALTHCHECK --interval=1s --timeout=2s --start-period={seconds + 5}s --retries=2 "
            'CMD ["/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/health"]\n'
            f'ENTRYPOINT ["/bin/sh", "-c", "trap \'exit 0\' TERM INT; sleep {seconds} & wait; '
            'httpd -f -p 8080 -h /www & wait"]\n'
        )
        client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{repo}:{tag}", rm=True,
                            labels={"dockhand.lab": "1"})
        client.images.push(repo, tag=tag, auth_config=auth)
    client.close()
    return f"app-warmup{seconds}"


def parse_time(text: str) -> float:
    """Engine timestamps have nanoseconds; datetime takes microseconds."""
    head, _dot, rest = text.rstrip("Z").partition(".")
    fraction = (rest + "000000")[:6]
    return datetime.datetime.strptime(head + "." + fraction, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class HealthWatch(threading.Thread):
    """Polls each node's engine during a roll: for the new container of SERVICE, its creation time (the
    engine's Created) and when it was first seen healthy (within POLL seconds). The engine keeps neither
    for long: its event buffer and health log are short and shared with every other container."""

    POLL = 0.25

    def __init__(self, lab: LabState) -> None:
        super().__init__(daemon=True)
        self.clients = {node.name: node.client() for node in lab.nodes}
        self.old = {name: client.api.inspect_container(SERVICE)["Id"] for name, client in self.clients.items()}
        self.created: dict[str, float] = {}
        self.healthy: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name, client in self.clients.items():
                if name in self.healthy:
                    continue
                try:
                    attrs = client.api.inspect_container(SERVICE)
                except Exception:  # mid-swap the name may be missing for a moment
                    continue
                if attrs["Id"] == self.old[name]:
                    continue
                self.created[name] = parse_time(attrs["Created"])
                if (attrs["State"].get("Health") or {}).get("Status") == "healthy":
                    self.healthy[name] = time.time()
            time.sleep(self.POLL)

    def spans(self) -> list[float]:
        self.done.set()
        self.join(timeout=10)
        for client in self.clients.values():
            client.close()
        missing = sorted(set(self.clients) - set(self.healthy))
        if missing:
            sys.exit(f"no new healthy {SERVICE} seen on {missing}")
        return [self.healthy[name] - self.created[name] for name in sorted(self.clients)]


class DrainWatch(threading.Thread):
    """Polls haproxy (every POLL s) during a roll: when the first node left its backend (drain) and when the last
    one came back (ready). Between the two is the serial phase; the rest of the playbook's time is spent once per
    run (the start of ansible-playbook, resolving, locking and pulling everywhere, releasing the locks)."""

    POLL = 0.05

    def __init__(self, lab: LabState) -> None:
        super().__init__(daemon=True)
        self.api = RuntimeApi(str(lab.haproxy_socket))
        self.servers = [node.name for node in lab.nodes]
        self.first_drain: float | None = None
        self.last_ready: float | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            now = time.monotonic()
            states = [self.api.server("app", server).admin for server in self.servers]
            if any(state != "ready" for state in states) and self.first_drain is None:
                self.first_drain = now
            elif all(state == "ready" for state in states) and self.first_drain is not None:
                self.last_ready = now
            time.sleep(self.POLL)

    def span(self) -> float:
        self.done.set()
        self.join(timeout=10)
        if self.first_drain is None or self.last_ready is None:
            sys.exit("haproxy never showed a node drained and back")
        return self.last_ready - self.first_drain


class Load:
    """tests/support/loadgen.py in the background, through haproxy."""

    def __init__(self, lab: LabState, directory: Path) -> None:
        self.stats = directory / "load.json"
        self.stop = directory / "stop"
        self.process = subprocess.Popen([sys.executable, str(REPO / "tests" / "support" / "loadgen.py"),
                                         lab.frontend_url.rstrip("/") + "/version", str(self.stats),
                                         "--stop-file", str(self.stop)])

    def read(self) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while not self.stats.exists():
            if time.monotonic() > deadline:
                sys.exit("the load generator wrote no stats")
            time.sleep(0.2)
        data: dict[str, Any] = json.loads(self.stats.read_text())
        return data

    def finish(self) -> dict[str, Any]:
        self.stop.touch()
        self.process.wait(timeout=30)
        return self.read()


Row = tuple[str, float, float, int, int, float]  # tag, playbook s, sum of start+healthy, failed, requests, serial s


def rolls(lab: LabState, vars_file: Path, load: Load, repeat: int, rows: list[Row]) -> None:
    """Roll v1 -> v2 -> v1 ... under load, recording (tag, seconds, sum of start+healthy, failed, requests,
    seconds of the serial phase)."""
    load.read()
    for tag in ["v2", "v1"] * repeat:
        before = load.read()
        watch, drains = HealthWatch(lab), DrainWatch(lab)
        watch.start()
        drains.start()
        took = deploy(vars_file, tag)
        spans, serial = watch.spans(), drains.span()
        after = load.read()
        rows.append((tag, took, sum(spans), after["failed"] - before["failed"], after["total"] - before["total"],
                     serial))
        print(f"roll to {tag}: {took:6.1f} s, sum(start+healthy) {sum(spans):5.1f} s "
              f"({', '.join('%.1f' % s for s in spans)}), ratio {took / sum(spans):5.2f}; serial phase {serial:5.1f} s, "
              f"ratio {serial / sum(spans):5.2f}; requests {rows[-1][4]}, failed {rows[-1][3]}", flush=True)


def cleanup() -> None:
    play = """
- hosts: docker_hosts
  gather_facts: false
  tasks:
    - dockhand.containers.service: {name: demo-web, state: absent}
    - ansible.builtin.command: docker volume rm --force demo-web-data
    - ansible.builtin.file: {path: /var/log/dockhand/audit.jsonl, state: absent}
"""
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=REPO, delete=False) as handle:
        handle.write(play)
    try:
        timed([tool("ansible-playbook"), "-i", str(INVENTORY), handle.name])
    finally:
        os.unlink(handle.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cleanup", action="store_true", help="remove demo-web from the nodes afterwards")
    parser.add_argument("--warmup", type=int, default=0, metavar="N",
                        help="roll a variant of the lab app that answers only N seconds after its start")
    args = parser.parse_args()
    lab = load_state()
    if lab is None:
        sys.exit("the lab is not up: python tests/lab/lab.py up")
    vars_file = lab.dir / "deploy-vars.yml"
    if args.warmup > 0:
        global REPO_NAME  # pylint: disable=global-statement
        REPO_NAME = warmup_images(lab, args.warmup)
        print(f"app: dockhand/{REPO_NAME} (answers {args.warmup} s after its start)", flush=True)

    print("deploy v1 (setup)", flush=True)
    deploy(vars_file, "v1")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="ro-bench-") as directory:
        load = Load(lab, Path(directory))
        try:
            rolls(lab, vars_file, load, args.repeat, rows)
        finally:
            final = load.finish()

    idempotent, ping = [], []
    for _round in range(args.repeat):
        idempotent.append(deploy(vars_file, "v1"))
        ping.append(timed([tool("ansible"), "-i", str(INVENTORY), "docker_hosts", "-m", "ansible.builtin.ping"]))
    if args.cleanup:
        cleanup()

    roll = statistics.median(r[1] for r in rows)
    healthy = statistics.median(r[2] for r in rows)
    print()
    serial = statistics.median(r[5] for r in rows)
    print(f"rolling update of 3 nodes (median of {len(rows)}): {roll:.1f} s; sum of start+healthy {healthy:.1f} s; "
          f"ratio {roll / healthy:.2f} (target <= {TARGET_ROLL})")
    print(f"  of which the serial phase (first node drained -> last node back in haproxy): {serial:.1f} s, "
          f"ratio {serial / healthy:.2f}; per host beyond start+healthy {(serial - healthy) / 3:.2f} s; "
          f"once per run {roll - serial:.1f} s")
    print(f"failed requests through haproxy: {final['failed']} of {final['total']} (target 0)")
    print(f"idempotent deploy.yml {statistics.median(idempotent):.1f} s vs ping {statistics.median(ping):.1f} s: "
          f"ratio {statistics.median(idempotent) / statistics.median(ping):.2f} (target <= {TARGET_IDEMPOTENT})")


if __name__ == "__main__":
    main()
