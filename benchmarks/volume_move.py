"""Benchmark: moving a volume between two lab nodes the way playbooks/move_service.yml does vs `tar | ssh | tar`.

    python benchmarks/volume_move.py [--size-mb 200] [--repeat 3] [--source node2] [--target node3] [--full]
                                     [--modes stream,stream-none,archives]

A local volume on --source is filled with --size-mb of random data (20 kB files for a fifth of it, the rest in 4 big
files). Then, interleaved and --repeat times, each into a fresh volume of the same name on --target:
  stream       the final copy of move_service.yml's stream path as one ansible-playbook run: volume_transfer on
               the controller (`ssh source <send> | ssh target <receive>`: safety rule before tar, sha256 on
               both ends, listing after), zstd level 3 on the way; into an empty volume created beforehand, as
               for raw (the playbook creates it before the first copy). The module's own duration (without
               Ansible's start) is printed too.
  stream-none  the same with move_service_stream_compression: none.
  archives     the archives (fallback) path's steps: volume_backup on the source, fetch to the controller (streamed
               to disk), copy to the target, volume_restore there (checksum first, listing after).
  raw          `ssh source tar -C <mountpoint> -cf - . | ssh target tar -C <empty mountpoint> -xf -`, also through
               the controller (this machine), with the same SSH key and options as the inventory.
Everything passes THROUGH THE CONTROLLER, as in the playbook: there is no node-to-node connection. Prints the size,
median seconds, MB/s and the ratio raw/ours (1.0 = as fast as the raw pipeline; target >= 0.7). --full also times
the whole move_service.yml (first live copy, stop, final copy, start on the target with its health wait) with a
service mounting the volume, against the same raw pipeline. The load average is printed before and after.
Needs the lab (python tests/lab/lab.py up). Never run by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "lab"))
from labstate import LabState, Node, load_state  # noqa: E402

NAME = "mv-bench"
VOLUME = NAME + "-data"
PORT = 19599
ARCHIVES_DIR = "/var/backups/dockhand/mv-bench"
TARGET = 0.7

ARCHIVES = """
- hosts: "{{ source }}"
  gather_facts: false
  tasks:
    - dockhand.containers.volume_backup: {volume: "{{ volume }}", dest: "{{ archives }}", keep: 1}
      register: final
    - name: Transfer the archives without SSH compression (they are compressed already)
      ansible.builtin.set_fact:
        ansible_ssh_args: >-
          {{ (hostvars[inventory_hostname].ansible_ssh_args
              | default(lookup('ansible.builtin.config', 'ssh_args', plugin_type='connection', plugin_name='ssh'))
             ).split() | reject('equalto', '-C') | join(' ') }}
        # a control master opened with -C would carry the transfer compressed: use masters of their own
        ansible_control_path_dir: >-
          {{ hostvars[inventory_hostname].ansible_control_path_dir
             | default(lookup('ansible.builtin.config', 'control_path_dir', plugin_type='connection', plugin_name='ssh'))
          }}/dockhand-move
    - ansible.builtin.fetch: {src: "{{ item }}", dest: "{{ controller }}/", flat: true}
      loop: "{{ [final.path, final.manifest] }}"
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - ansible.builtin.file: {path: "{{ archives }}", state: directory, mode: "0700"}
    - name: Transfer the archives without SSH compression (they are compressed already)
      ansible.builtin.set_fact:
        ansible_ssh_args: >-
          {{ (hostvars[inventory_hostname].ansible_ssh_args
              | default(lookup('ansible.builtin.config', 'ssh_args', plugin_type='connection', plugin_name='ssh'))
             ).split() | reject('equalto', '-C') | join(' ') }}
        # a control master opened with -C would carry the transfer compressed: use masters of their own
        ansible_control_path_dir: >-
          {{ hostvars[inventory_hostname].ansible_control_path_dir
             | default(lookup('ansible.builtin.config', 'control_path_dir', plugin_type='connection', plugin_name='ssh'))
          }}/dockhand-move
    - ansible.builtin.copy: {src: "{{ controller }}/{{ item | basename }}", dest: "{{ archives }}/", mode: "0600"}
      loop: "{{ [hostvars[source].final.path, hostvars[source].final.manifest] }}"
    - dockhand.containers.volume_restore: {path: "{{ archives }}/{{ hostvars[source].final.path | basename }}"}
"""

STREAM = """
- hosts: localhost
  gather_facts: false
  tasks:
    - dockhand.containers.volume_transfer:
        source: "{{ endpoints[source] | combine({'path': paths[source]}) }}"
        target: "{{ endpoints[target] | combine({'path': paths[target]}) }}"
        compression: "{{ compression }}"
      register: moved
    - ansible.builtin.copy: {content: "{{ moved | to_json }}", dest: "{{ report }}", mode: "0600"}
"""


def playbook(lab: LabState, path: Path, extra: dict[str, Any], work: Path) -> float:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    extra_file = work / (path.stem + "-vars.json")
    extra_file.write_text(json.dumps(extra))
    start = time.monotonic()
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(lab.inventory),
                           "-e", "@%s" % extra_file, str(path)], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)
    took = time.monotonic() - start
    if proc.returncode:
        raise SystemExit("%s failed:\n%s\n%s" % (path.name, proc.stdout[-4000:], proc.stderr[-2000:]))
    return took


def run_module(module: str, args: dict[str, Any]) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO / ".cache" / "collections"))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.dockhand.containers.plugins.modules." + module],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True, env=env,
                          check=False)
    if json.loads(proc.stdout).get("failed"):
        raise SystemExit("%s failed: %s" % (module, proc.stdout))


def ssh(lab: LabState, node: Node) -> str:
    return ("ssh -i %s -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
            "root@127.0.0.1" % (lab.ssh_private_key, node.ssh_port))


def mountpoint(client: docker.DockerClient, name: str) -> str:
    return str(client.volumes.get(name).attrs["Mountpoint"])


def drop(client: docker.DockerClient, name: str, volume: bool = True) -> None:
    for container in client.containers.list(all=True):
        if container.name == NAME:
            container.remove(force=True)
    if not volume:
        return
    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def fill(client: docker.DockerClient, image: str, size_mb: int) -> int:
    small = max(1, size_mb * 1_000_000 // 5 // 20_000)
    big = (size_mb * 1_000_000 - small * 20_000) // 4
    client.volumes.create(VOLUME)
    script = ("mkdir -p /v/small && i=0; while [ $i -lt %d ]; do head -c 20000 /dev/urandom > /v/small/f$i; "
              "i=$((i+1)); done; for b in 0 1 2 3; do head -c %d /dev/urandom > /v/big$b; done" % (small, big))
    client.containers.run(image, ["sh", "-c", script], volumes={VOLUME: {"bind": "/v", "mode": "rw"}}, remove=True,
                          network_disabled=True)
    return small * 20_000 + 4 * big


def endpoint(lab: LabState, name: str) -> dict[str, Any]:
    """How the playbook's inventory reaches a node (what move_service.yml hands to volume_transfer)."""
    return dict(name=name, host="127.0.0.1", port=lab.node(name).ssh_port, user="root",
                private_key_file=str(lab.ssh_private_key),
                ssh_common_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--size-mb", type=int, default=200, help="data in the volume, in MB (10^6 bytes)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", default="node2")
    parser.add_argument("--target", default="node3")
    parser.add_argument("--modes", default="stream,stream-none,archives",
                        help="comma-separated: stream, stream-none, archives")
    parser.add_argument("--full", action="store_true", help="also time the whole move_service.yml")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - {"stream", "stream-none", "archives"})
    if unknown:
        raise SystemExit("--modes: unknown %s (choose from stream, stream-none, archives)" % ", ".join(unknown))
    lab = load_state()
    if lab is None:
        raise SystemExit("no lab: run python tests/lab/lab.py up")
    source, target = lab.node(args.source), lab.node(args.target)
    a, b = source.client(timeout=600), target.client(timeout=600)
    image = lab.images["tool"].pinned
    for node in (source, target):
        subprocess.run(["docker", "exec", node.container, "docker", "pull", "-q", image], check=True,
                       capture_output=True)
    drop(a, VOLUME)
    drop(b, VOLUME)
    size = fill(a, image, args.size_mb)
    print("volume %s on %s: %d bytes (%.0f MB), moved to %s %d times; archives and streams pass through the "
          "controller; load average before: %s" % (VOLUME, args.source, size, size / 1e6, args.target, args.repeat,
                                                   load()))
    work = Path(tempfile.mkdtemp(prefix="dockhand-mv-bench-"))
    books = {"archives": work / "archives.yml", "stream": work / "stream.yml"}
    books["archives"].write_text(ARCHIVES)
    books["stream"].write_text(STREAM)
    endpoints = {n: endpoint(lab, n) for n in (args.source, args.target)}
    raw_command = "%s tar -C %s -cf - . | %s tar -C %%s -xf -" % (ssh(lab, source), mountpoint(a, VOLUME),
                                                                  ssh(lab, target))
    times: dict[str, list[float]] = {m: [] for m in modes + ["raw", "full"]}
    inside: dict[str, list[float]] = {m: [] for m in modes}
    try:
        for _round in range(args.repeat):
            for mode in modes:
                drop(b, VOLUME)
                extra: dict[str, Any] = dict(source=args.source, target=args.target, volume=VOLUME,
                                             archives=ARCHIVES_DIR, controller=str(work / "controller"))
                if mode != "archives":
                    b.volumes.create(VOLUME)
                    extra.update(endpoints=endpoints, compression="none" if mode == "stream-none" else "zstd",
                                 paths={args.source: mountpoint(a, VOLUME), args.target: mountpoint(b, VOLUME)},
                                 report=str(work / "report.json"))
                times[mode].append(playbook(lab, books["archives" if mode == "archives" else "stream"], extra, work))
                if mode != "archives":
                    inside[mode].append(json.loads((work / "report.json").read_text())["duration"])
            drop(b, VOLUME)
            b.volumes.create(VOLUME)
            start = time.monotonic()
            subprocess.run(raw_command % mountpoint(b, VOLUME), shell=True, check=True)
            times["raw"].append(time.monotonic() - start)
            if args.full:
                drop(b, VOLUME)
                app = lab.images["v1"].pinned
                spec: dict[str, Any] = dict(name=NAME, image=app, volumes=[VOLUME + ":/data"], ports=["%d:8080" % PORT])
                subprocess.run(["docker", "exec", source.container, "docker", "pull", "-q", app],
                               check=True, capture_output=True)
                subprocess.run(["docker", "exec", target.container, "docker", "pull", "-q", app],
                               check=True, capture_output=True)
                run_module("service", dict(spec, docker_host=source.docker_host))
                times["full"].append(playbook(lab, REPO / "playbooks" / "move_service.yml", dict(
                    move_service_from=args.source, move_service_to=args.target, move_service_spec=spec,
                    move_service_controller_dir=str(work / "full")), work))
                drop(a, VOLUME, volume=False)  # the stopped source container; its volume stays for the next round
                drop(b, VOLUME)
    finally:
        drop(a, VOLUME)
        drop(b, VOLUME)
        a.close()
        b.close()
    raw = statistics.median(times["raw"])
    print("load average after: %s" % load())
    for what in modes + ["full"]:
        if not times[what]:
            continue
        ours = statistics.median(times[what])
        ratio = raw / ours
        print("%-11s %7.2f s %7.1f MB/s | raw tar|ssh|tar %6.2f s %7.1f MB/s | raw/%s %.2f (target >= %.1f)%s"
              % (what, ours, size / 1e6 / ours, raw, size / 1e6 / raw, what, ratio, TARGET,
                 "" if ratio >= TARGET else "  BELOW TARGET"))
        rounds = " ".join("%.2f" % t for t in times[what])
        print("            rounds: %s, raw rounds: %s" % (rounds, " ".join("%.2f" % t for t in times["raw"])))
        if inside.get(what):
            module = statistics.median(inside[what])
            print("            the module alone (no Ansible start): %.2f s %.1f MB/s, raw/module %.2f"
                  % (module, size / 1e6 / module, raw / module))


if __name__ == "__main__":
    main()
