"""Benchmark: volume_backup / volume_restore throughput vs the raw `tar -c | zstd` and `zstd -d | tar -x` pipelines.

    python benchmarks/volume_backup.py [--repeat 3] [--scale 1.0] [--engine-path] [--node node2]

Fast path (a local volume of this machine's Docker Engine): a 1 GiB data set (10,000 files of 20 kB and 4 files of
200 MB, random data; --scale shrinks it) is written into a volume, then --repeat rounds, each starting its steps from
a different one (whoever runs right after a big write may pay for it), every step after a `sync`:
  backup   dockhand.containers.volume_backup (the module as Ansible runs it: its own Python process)
           vs `tar -C <mountpoint> -cf - . | zstd -q -o <file>` (zstd's default level 3, like the module),
           vs the same `&& sync <file>` (on disk before it counts as written, like the module's archive),
           vs the same `&& sha256 <file> && sync <file>` (the module's work: the manifest holds the sha256)
  restore  dockhand.containers.volume_restore into a new volume (read once: hashed, each entry checked before tar
           gets it, staged beside the data, moved in once the sha256 and listing agree; listing compared after)
           vs `zstd -dc <file> | tar -C <empty mountpoint> -xf -`,
           vs the same with `sha256 <file>` beside it
and prints the median seconds, MB/s and the ratio raw/module (1.0 = as fast as the raw pipeline; target >= 0.9).

--engine-path does the same on a lab node (--node) with a `dockhand-lab` plugin volume, whose data only the Engine
can reach: the module goes through a helper container and the Engine's archive API; the raw pipeline reads the
plugin's own directory from this machine (through the node's /proc/PID/root) as the fastest possible reference.
Needs root, zstd (the CLI, for the reference pipelines only) and, for --engine-path, the lab. Never run by tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import docker

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".cache" / "collections"
sys.path.insert(0, str(REPO / "tests" / "lab"))
from labstate import load_state  # noqa: E402

PREFIX = "ar-bench"
SMALL_FILES, SMALL_SIZE, BIG_FILES, BIG_SIZE = 10_000, 20_000, 4, 200 * 1024 * 1024
TARGET = 0.9


def run_module(module: str, args: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.dockhand.containers.plugins.modules." + module],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True, env=env,
                          check=False)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit("%s failed: %s" % (module, result.get("msg")))
    return dict(result)


def fill(root: Path, scale: float) -> int:
    """Write the data set into ``root``; its size in bytes."""
    total = 0
    small, big = max(1, int(SMALL_FILES * scale)), int(BIG_SIZE * scale)
    for index in range(small):
        folder = root / ("d%03d" % (index // 250))
        folder.mkdir(exist_ok=True)
        (folder / ("f%05d" % index)).write_bytes(os.urandom(SMALL_SIZE))
        total += SMALL_SIZE
    for index in range(BIG_FILES):
        with open(root / ("big%d" % index), "wb") as handle:
            left = big
            while left:
                block = os.urandom(min(left, 1 << 22))
                handle.write(block)
                left -= len(block)
        total += big
    return total


CPU: dict[str, list[float]] = {}


def timed(action: Callable[[], Any], what: str = "") -> float:
    """Wall seconds of ``action``; the CPU seconds its child processes used go to ``CPU[what]``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    action()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(what, []).append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return wall


def shell(command: str) -> None:
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)


def drop_volume(client: docker.DockerClient, name: str) -> None:
    try:
        client.volumes.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


def report(what: str, size: int, ours: list[float], raw: list[float], raw_name: str, cpu: tuple[str, str]) -> None:
    mine, theirs = statistics.median(ours), statistics.median(raw)
    ratio = theirs / mine
    print("%-16s module %6.2f s (%6.0f MB/s)   %-24s %6.2f s (%6.0f MB/s)   ratio %.2f %s"
          % (what, mine, size / mine / 1e6, raw_name, theirs, size / theirs / 1e6, ratio,
             "(target >= %.1f)" % TARGET if what.startswith("fast") else ""), flush=True)
    # CPU seconds (user + system of every process involved) depend less on what else the machine runs.
    cpu_mine, cpu_theirs = statistics.median(CPU[cpu[0]]), statistics.median(CPU[cpu[1]])
    print("%-16s CPU    %6.2f s                %-24s %6.2f s                CPU ratio %.2f"
          % ("", cpu_mine, "", cpu_theirs, cpu_theirs / cpu_mine), flush=True)


# sha256 of the file named after it, with OpenSSL's code (hashlib), in big reads: the fastest at hand here (coreutils'
# sha256sum is 3x slower on this CPU; hashing the pipeline's output through tee costs more than reading the file back).
HASH = "%s -c 'import hashlib, sys; hashlib.file_digest(open(sys.argv[1], \"rb\"), \"sha256\")'" % sys.executable


def rotated(steps: list[Callable[[], None]], round_: int) -> None:
    """Run ``steps`` starting from a different one each round: whoever runs right after a big write may pay for
    the filesystem's work on it, so no side always runs first."""
    start = round_ % len(steps)
    for step in steps[start:] + steps[:start]:
        step()


def bench(client: docker.DockerClient, docker_host: str, source: str, raw_source: str,
          raw_restore_dir: Callable[[str], str], size: int, repeat: int, label: str, work: Path, prefix: str) -> None:
    times: dict[str, list[float]] = {}

    def step(what: str, action: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            # Every timed step starts with no dirty pages: otherwise the disk is still writing the previous step's
            # output while the next one runs, and whoever runs second pays for it.
            os.sync()
            times.setdefault(what, []).append(timed(action, what))
        return run

    for round_ in range(repeat):
        dest = work / ("round%d" % round_)
        dest.mkdir()
        raw_file = work / ("raw%d.tar.zst" % round_)
        same_file = work / ("same%d.tar.zst" % round_)
        made: dict[str, Any] = {}
        load = os.getloadavg()[0]
        rotated([
            step("raw_b", lambda: shell("tar -C %s -cf - . | zstd -q -o %s" % (raw_source, raw_file))),
            # The same pipeline made as durable as the module's archive (fsync before it counts as written).
            step("raw_bs", lambda: shell("tar -C %s -cf - . | zstd -q -o %s.s && sync %s.s"
                                         % (raw_source, raw_file, raw_file))),
            # The same work as the module's: the archive, its sha256 (for the manifest), on disk.
            step("raw_bh", lambda: shell("tar -C %s -cf - . | zstd -q -o %s && %s %s && sync %s"
                                         % (raw_source, same_file, HASH, same_file, same_file))),
            step("ours_b", lambda: made.update(run_module("volume_backup", dict(
                volume=source, dest=str(dest), docker_host=docker_host)))),
        ], round_)
        target = "%s-restored%d" % (prefix, round_)
        raw_targets = ["%s-raw%d" % (prefix, round_), "%s-same%d" % (prefix, round_)]
        raw_dirs = []
        for name in raw_targets:
            client.volumes.create(name)
            raw_dirs.append(raw_restore_dir(name))
        rotated([
            step("raw_r", lambda: shell("zstd -dc %s | tar -C %s -xf -" % (raw_file, raw_dirs[0]))),
            # The same work as the module's: the archive's sha256 checked beside the extraction.
            step("raw_rh", lambda: shell("%s %s & zstd -dc %s | tar -C %s -xf - && wait $!"
                                         % (HASH, raw_file, raw_file, raw_dirs[1]))),
            step("ours_r", lambda: run_module("volume_restore", dict(path=made["path"], volume=target,
                                                                     docker_host=docker_host))),
        ], round_)
        print("  round %d: backup %.2f s (raw %.2f, raw + fsync %.2f, raw + sha256 + fsync %.2f), restore %.2f s "
              "(raw %.2f, raw + sha256 %.2f), data path %s, load %.1f"
              % (round_ + 1, times["ours_b"][-1], times["raw_b"][-1], times["raw_bs"][-1], times["raw_bh"][-1],
                 times["ours_r"][-1], times["raw_r"][-1], times["raw_rh"][-1], made["data_path"], load), flush=True)
        for name in [target] + raw_targets:
            drop_volume(client, name)
        shutil.rmtree(dest)
        for each in work.glob("*%d.tar.zst*" % round_):
            each.unlink()
    ours_b, ours_r = times["ours_b"], times["ours_r"]
    report("%s backup" % label, size, ours_b, times["raw_b"], "tar -c | zstd", ("ours_b", "raw_b"))
    report("%s backup" % label, size, ours_b, times["raw_bs"], "... && sync FILE", ("ours_b", "raw_bs"))
    report("%s backup" % label, size, ours_b, times["raw_bh"], "... && sha256 && sync", ("ours_b", "raw_bh"))
    report("%s restore" % label, size, ours_r, times["raw_r"], "zstd -d | tar -x", ("ours_r", "raw_r"))
    report("%s restore" % label, size, ours_r, times["raw_rh"], "... & sha256 FILE", ("ours_r", "raw_rh"))
    CPU.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 1 GiB data set")
    parser.add_argument("--engine-path", action="store_true", help="also the plugin volume on a lab node")
    parser.add_argument("--node", default="node2")
    parser.add_argument("--work", default="/var/tmp/dockhand-bench-volumes", help="archives go here")
    parser.add_argument("--prefix", default=PREFIX, help="name prefix of the volumes and containers created")
    options = parser.parse_args()
    prefix = options.prefix
    work = Path(options.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    client = docker.from_env()
    source = prefix + "-data"
    drop_volume(client, source)
    mountpoint = client.volumes.create(source).attrs["Mountpoint"]
    size = fill(Path(mountpoint), options.scale)
    files = int(SMALL_FILES * options.scale) + BIG_FILES
    print("data set: %d MB in %d files, local volume %s" % (size / 1e6, files, source), flush=True)
    try:
        bench(client, "unix:///var/run/docker.sock", source, mountpoint,
              lambda name: client.volumes.get(name).attrs["Mountpoint"], size, options.repeat, "fast path", work, prefix)
    finally:
        drop_volume(client, source)

    if options.engine_path:
        lab = load_state()
        if lab is None:
            raise SystemExit("--engine-path needs the lab (python tests/lab/lab.py up)")
        node = lab.node(options.node)
        node_client = node.client(timeout=600)
        pid = client.api.inspect_container(node.container)["State"]["Pid"]
        node_root = "/proc/%d/root" % pid
        drop_volume(node_client, source)
        node_client.volumes.create(source, driver="dockhand-lab")
        plugin_dir = node_root + node_client.volumes.get(source).attrs["Mountpoint"]
        # The plugin's directory exists while the volume is mounted; fill it through a container of the node.
        holder = node_client.containers.create(lab.images["tool"].pinned, ["sleep", "3600"], name=prefix + "-holder",
                                               volumes={source: {"bind": "/data"}})
        holder.start()
        try:
            plugin_dir = node_root + node_client.api.inspect_container(holder.id)["Mounts"][0]["Source"]
            fill(Path(plugin_dir), options.scale)
            holder.stop(timeout=1)
            bench(node_client, node.docker_host, source, plugin_dir,
                  lambda name: "%s/var/lib/docker/volumes/%s/_data" % (node_root, name), size, options.repeat,
                  "engine path", work, prefix)
        finally:
            holder.remove(force=True)
            drop_volume(node_client, source)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
