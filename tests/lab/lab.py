"""The dockhand integration lab: a TLS registry, three Docker hosts behind SSH and haproxy, all on this machine.

    python tests/lab/lab.py up [--only registry]   # create what is missing, repair what is broken, reuse the rest
    python tests/lab/lab.py status                 # say what is up
    python tests/lab/lab.py down [--purge]         # remove everything the lab made (--purge: also the rootfs cache)

Everything lives under $DOCKHAND_LAB_DIR (default /tmp/dockhand-lab); Docker objects are named ``dockhand-lab...``
or ``dockhand-node<N>`` and labelled ``dockhand.lab=1`` so ``down`` finds them all. See tests/lab/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import yaml
from docker.types import IPAMConfig, IPAMPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labstate import ImageInfo, LabState, Node, lab_dir, load_state  # noqa: E402

HERE = Path(__file__).resolve().parent
IMAGES_DIR = HERE / "images"
ENGINE_SH = HERE / "engine.sh"

LABEL = "dockhand.lab"
LABELS = {LABEL: "1"}
NETWORK = "dockhand-lab"
SUBNET = "172.30.213.0/24"
GATEWAY = "172.30.213.1"
REGISTRY_PORT = 5443
REGISTRY = f"{GATEWAY}:{REGISTRY_PORT}"
REGISTRY_USER = "dockhand"
# A second docker-registry over the same storage, read-only, plain HTTP and without auth: the nodes' engines list it
# in insecure-registries, the outer engine does not (an ordinary insecure registry, same images and digests).
PLAIN_REGISTRY_PORT = 5080
PLAIN_REGISTRY = f"{GATEWAY}:{PLAIN_REGISTRY_PORT}"
OUTER_CERTS_D = Path("/etc/docker/certs.d") / REGISTRY
APP_REPO = f"{REGISTRY}/dockhand/app"
TOOL_REPO = f"{REGISTRY}/dockhand/tool"
NODE_COUNT = 3
NODE_BASE_IMAGE = "dockhand-lab/node-base:bookworm"
NODE_IMAGE = "dockhand-lab/node:bookworm"
NODE_DOCKER_SDK = "docker==7.1.0"
# node3 runs Debian's python3-docker (5.0.3 in bookworm), the others the pip SDK above, so both stay supported.
DEBIAN_SDK_NODES = ("node3",)
DEBIAN_SDK_VERSION = "5.0.3"
DEBOOTSTRAP_PACKAGES = "python3,python3-docker,docker.io,iproute2,procps,openssh-server,ca-certificates"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HAPROXY_FRONTEND_PORT = 18080
# Spare nodes (Lab.up_spares): dockhand-spare1..N for tests that stop a node's engine or sshd, which the shared
# nodes must never see. Their own addresses and ports, and their own haproxy over them.
SPARE_MAX = 5
SPARE_HAPROXY_FRONTEND_PORT = 18160
CACHE_DIR = Path.home() / ".cache" / "dockhand-lab"
# The volume plugin on this machine's own engine: a managed (v2) plugin, so that `lab down` can disable and remove it
# cleanly (an engine keeps a legacy plugin it has used until it restarts, and then waits ~15 s on every volume listing).
HOST_PLUGIN = "dockhand-lab-host"
HOST_PLUGIN_REF = f"{HOST_PLUGIN}:latest"

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"

# The apt package that provides each host command the lab needs (CI may start from a bare Debian).
HOST_TOOLS = {
    "docker-registry": "docker-registry",
    "haproxy": "haproxy",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "openssl": "openssl",
    "htpasswd": "apache2-utils",
}
BUSYBOX = Path("/bin/busybox")


class LabError(RuntimeError):
    """Something the lab could not set up; the message says what and where to look."""


# --------------------------------------------------------------------------------------------- small helpers


def run(cmd: list[str], *, input_text: str | None = None, check: bool = True, timeout: float = 600) -> str:
    """Run a host command and return its stdout; on failure raise with the command's stderr."""
    proc = subprocess.run(cmd, input=input_text, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def wait_for(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def sha256_of(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def tree_hash(root: Path) -> str:
    """A hash of every file (path, mode, content) under ``root``: changes when a build context changes."""
    parts: list[bytes] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts += [str(path.relative_to(root)).encode(), oct(path.stat().st_mode & 0o777).encode(), path.read_bytes()]
    return sha256_of(*parts)


def write_if_changed(path: Path, content: str | bytes, mode: int = 0o644) -> bool:
    data = content.encode() if isinstance(content, str) else content
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_bytes() == data:
        path.chmod(mode)
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


def process_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]


def our_pid(pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile`` if that process is alive and its command line names ``marker`` (our config file)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if marker in process_cmdline(pid) else None


def pids_naming(marker: str) -> list[int]:
    """Live processes whose command line names ``marker``: finds our daemons even when a pidfile is lost."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and marker in process_cmdline(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def stop_process(pid: int, timeout: float = 10) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if _is_zombie(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def port_listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def node_sdk(name: str) -> str:
    """Which Docker SDK for Python the node's /usr/bin/python3 imports: ``debian`` (python3-docker) or ``pip``."""
    return "debian" if name in DEBIAN_SDK_NODES else "pip"


def node_sdk_version(name: str) -> str:
    """The Docker SDK version the node's python3 must report."""
    return DEBIAN_SDK_VERSION if node_sdk(name) == "debian" else NODE_DOCKER_SDK.split("==")[1]


def node_ip(index: int) -> str:
    return f"172.30.213.{10 + index}"


# --------------------------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Paths:
    """Where everything lives in the state directory."""

    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    @property
    def deploy_vars(self) -> Path:
        return self.root / "deploy-vars.yml"

    @property
    def ca_dir(self) -> Path:
        return self.root / "ca"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.ca_dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.ca_dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.ca_dir / "server.key"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    @property
    def registry_config(self) -> Path:
        return self.registry_dir / "config.yml"

    @property
    def registry_pidfile(self) -> Path:
        return self.registry_dir / "registry.pid"

    @property
    def plain_registry_config(self) -> Path:
        return self.registry_dir / "plain.yml"

    @property
    def plain_registry_pidfile(self) -> Path:
        return self.registry_dir / "plain.pid"

    @property
    def registry_password(self) -> Path:
        return self.registry_dir / "password"

    @property
    def images_record(self) -> Path:
        return self.registry_dir / "images.json"

    @property
    def ssh_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    @property
    def haproxy_dir(self) -> Path:
        return self.root / "haproxy"

    @property
    def haproxy_config(self) -> Path:
        return self.haproxy_dir / "haproxy.cfg"

    @property
    def haproxy_pidfile(self) -> Path:
        return self.haproxy_dir / "haproxy.pid"

    @property
    def haproxy_socket(self) -> Path:
        return self.haproxy_dir / "admin.sock"

    @property
    def spare_haproxy_config(self) -> Path:
        return self.root / "spare-haproxy" / "haproxy.cfg"

    @property
    def spare_haproxy_pidfile(self) -> Path:
        return self.root / "spare-haproxy" / "haproxy.pid"

    @property
    def spare_haproxy_socket(self) -> Path:
        return self.root / "spare-haproxy" / "admin.sock"

    @property
    def lock(self) -> Path:
        # Beside the state dir, not in it: `down` removes the state dir while holding the lock.
        return self.root.with_name(self.root.name + ".lock")

    def node_dir(self, name: str) -> Path:
        return self.root / "nodes" / name


# --------------------------------------------------------------------------------------------- phases


@dataclass
class Phases:
    """Times each phase of ``up`` and remembers whether anything had to be (re)made."""

    started: float = field(default_factory=time.monotonic)
    made_something: bool = False
    reused_everything: bool = True

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[PhaseNote]:
        note = PhaseNote()
        start = time.monotonic()
        print(f"  {name} ...", flush=True)
        try:
            yield note
        finally:
            if not note.reused:
                self.reused_everything = False
            if note.made:
                self.made_something = True
            print(f"  {name}: {note.text or 'done'} ({time.monotonic() - start:.1f} s)", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class PhaseNote:
    text: str = ""
    reused: bool = False
    made: bool = False

    def reuse(self, text: str) -> None:
        self.text, self.reused = text, True

    def make(self, text: str) -> None:
        self.text, self.made = text, True


# --------------------------------------------------------------------------------------------- the lab


SSH_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def ssh_host_vars(node: Node, private_key: Path, ssh_args: str = SSH_ARGS) -> dict[str, Any]:
    """The inventory variables that reach a lab node over SSH (127.0.0.1:its port, root with the lab's key)."""
    return {
        "ansible_host": "127.0.0.1",
        "ansible_port": node.ssh_port,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(private_key),
        "ansible_ssh_common_args": ssh_args,
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_pipelining": True,
    }


@dataclass(frozen=True)
class SpareSet:
    """Spare nodes made by :meth:`Lab.up_spares` and their own haproxy (backend ``app``, servers named like the nodes)."""

    nodes: list[Node]
    haproxy_socket: Path
    frontend_url: str

    def write_inventory(self, private_key: Path, path: Path) -> Path:
        """An inventory of the spare nodes in group ``docker_hosts`` (SSH gives up after 5 s: fault tests stop
        sshd), written to ``path``."""
        hosts = {node.name: ssh_host_vars(node, private_key, SSH_ARGS + " -o ConnectTimeout=5") for node in self.nodes}
        path.write_text(json.dumps({"docker_hosts": {"hosts": hosts}}))
        return path


class Lab:
    def __init__(self, root: Path) -> None:
        self.paths = Paths(root)
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.from_env(timeout=900)
        return self._client

    # ------------------------------------------------------------------ up

    def up(self, only_registry: bool) -> None:
        phases = Phases()
        previous = load_state(self.paths.root)
        print(f"lab up: state dir {self.paths.root}" + (" (registry only)" if only_registry else ""), flush=True)
        with phases.phase("host tools") as note:
            self.ensure_host_tools(note)
        with phases.phase("engine") as note:
            self.ensure_engine(note)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.root.chmod(0o700)
        with phases.phase("network") as note:
            self.ensure_network(note)
        fresh = note.made
        with phases.phase("certificates") as note:
            self.ensure_certificates(note)
        with phases.phase("registry") as note:
            password = self.ensure_registry(note)
        with phases.phase("test images") as note:
            images = self.ensure_images(note, password)

        nodes: list[Node] = []
        complete = False
        if only_registry:
            if previous is not None and previous.complete:
                nodes, complete = previous.nodes, True  # untouched and still described
        else:
            with phases.phase("ssh key") as note:
                self.ensure_ssh_key(note)
            with phases.phase("node image") as note:
                node_image = self.ensure_node_image(note)
            with phases.phase("nodes") as note:
                nodes = self.ensure_nodes(note, node_image, password)
            with phases.phase("haproxy") as note:
                self.ensure_haproxy(note)
            with phases.phase("host volume plugin") as note:
                self.ensure_host_plugin(note)
            complete = True
        if phases.made_something:
            self.prune_superseded_images()

        state = self.describe(password, images, nodes, complete)
        with phases.phase("inventory") as note:
            self.write_inventory(state)
            state.save()
            note.text = f"wrote {self.paths.inventory}, {self.paths.deploy_vars}, {self.paths.state}"
            note.reused = True

        # "cold" means the lab did not exist (its network had to be made); "repair" means parts were remade.
        kind = "warm" if phases.reused_everything else ("cold" if fresh else "repair")
        print(f"lab up: {kind} {phases.elapsed():.1f} s", flush=True)

    def ensure_host_tools(self, note: PhaseNote) -> None:
        missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
        if not _package_installed("busybox-static"):
            missing.append("busybox-static")
        if not missing:
            note.reuse("all present")
            return
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env)
        note.make(f"installed {' '.join(missing)}")

    def ensure_engine(self, note: PhaseNote) -> None:
        with contextlib.suppress(Exception):
            if self.client.ping():
                note.reuse(f"Docker Engine {self.client.version()['Version']}")
                return
        self._client = None
        subprocess.run(["bash", str(ENGINE_SH)], check=True)
        note.make("engine started by engine.sh")

    def ensure_network(self, note: PhaseNote) -> None:
        for net in self.client.networks.list(names=[NETWORK]):
            if net.name != NETWORK:
                continue
            configs = (net.attrs.get("IPAM") or {}).get("Config") or []
            if configs and configs[0].get("Subnet") == SUBNET and configs[0].get("Gateway") == GATEWAY:
                note.reuse(f"{NETWORK} {SUBNET}")
                return
            if net.attrs.get("Containers"):
                raise LabError(f"network {NETWORK} exists with another subnet and is in use; run `lab.py down` first")
            net.remove()
        self.client.networks.create(
            NETWORK,
            driver="bridge",
            ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=SUBNET, gateway=GATEWAY)]),
            options={"com.docker.network.bridge.name": NETWORK},
            labels=LABELS,
        )
        note.make(f"created {NETWORK} {SUBNET} gateway {GATEWAY}")

    # ------------------------------------------------------------------ TLS

    def ensure_certificates(self, note: PhaseNote) -> None:
        p = self.paths
        made = not self._certificates_valid()
        if made:
            p.ca_dir.mkdir(parents=True, exist_ok=True)
            p.ca_dir.chmod(0o700)
            self._make_ca()
            self._make_server_cert()
        text = ("made" if made else "reused") + " lab CA and server certificate"
        # The outer engine reads certs.d on every pull/push, so no restart is needed.
        if write_if_changed(OUTER_CERTS_D / "ca.crt", p.ca_cert.read_bytes()):
            made, text = True, f"{text}; installed {OUTER_CERTS_D / 'ca.crt'}"
        if made:
            note.make(text)
        else:
            note.reuse(text)

    def _certificates_valid(self) -> bool:
        p = self.paths
        if not all(f.exists() for f in (p.ca_cert, p.ca_key, p.server_cert, p.server_key)):
            return False
        verify = subprocess.run(
            ["openssl", "verify", "-CAfile", str(p.ca_cert), str(p.server_cert)], capture_output=True, check=False
        )
        fresh = subprocess.run(
            ["openssl", "x509", "-checkend", "86400", "-noout", "-in", str(p.server_cert)], capture_output=True, check=False
        )
        return verify.returncode == 0 and fresh.returncode == 0

    def _make_ca(self) -> None:
        p = self.paths
        run([
            "openssl", "req", "-x509", "-new", "-nodes", "-sha256", "-days", "3650",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(p.ca_key), "-out", str(p.ca_cert),
            "-subj", "/CN=dockhand lab CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])  # fmt: skip

    def _make_server_cert(self) -> None:
        p = self.paths
        csr = p.ca_dir / "server.csr"
        ext = p.ca_dir / "server.ext"
        ext.write_text(
            f"subjectAltName=IP:{GATEWAY},IP:127.0.0.1,DNS:localhost\n"
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n"
        )
        run([
            "openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", str(p.server_key), "-out", str(csr), "-subj", f"/CN={GATEWAY}",
        ])  # fmt: skip
        run([
            "openssl", "x509", "-req", "-sha256", "-days", "825", "-in", str(csr),
            "-CA", str(p.ca_cert), "-CAkey", str(p.ca_key), "-CAcreateserial",
            "-extfile", str(ext), "-out", str(p.server_cert),
        ])  # fmt: skip
        csr.unlink()
        p.server_key.chmod(0o600)

    # ------------------------------------------------------------------ registry

    def ensure_registry(self, note: PhaseNote) -> str:
        p = self.paths
        p.registry_dir.mkdir(parents=True, exist_ok=True)
        if not p.registry_password.exists():
            write_if_changed(p.registry_password, secrets.token_urlsafe(18), 0o600)
        password = p.registry_password.read_text().strip()
        htpasswd = p.registry_dir / "htpasswd"
        if not _htpasswd_matches(htpasswd, REGISTRY_USER, password):
            write_if_changed(htpasswd, run(["htpasswd", "-Bbn", REGISTRY_USER, password]), 0o600)
        tls_text = self._run_registry(p.registry_config, self._registry_config(htpasswd), p.registry_pidfile,
                                      p.registry_dir / "registry.log", f"https://{REGISTRY}/v2/ to answer 401",
                                      self._registry_answers)  # fmt: skip
        plain_text = self._run_registry(p.plain_registry_config, self._plain_registry_config(), p.plain_registry_pidfile,
                                        p.registry_dir / "plain.log", f"http://{PLAIN_REGISTRY}/v2/ to answer 200",
                                        self._plain_registry_answers)  # fmt: skip
        made = [text for text, started in (tls_text, plain_text) if started]
        if made:
            note.make("; ".join(made))
        else:
            note.reuse(f"{tls_text[0]}, {plain_text[0]}")
        return password

    def _run_registry(self, config: Path, text: str, pidfile: Path, log_path: Path, what: str,
                      answers: Callable[[], bool]) -> tuple[str, bool]:
        """Keep one docker-registry process serving ``config``; (description, whether it was (re)started)."""
        config_changed = write_if_changed(config, text, 0o600)
        addr = yaml.safe_load(text)["http"]["addr"]
        pid = our_pid(pidfile, str(config))
        if pid is not None and not config_changed and answers():
            return f"{addr} (pid {pid})", False
        for stale in {pid, *pids_naming(str(config))} - {None}:
            assert stale is not None
            stop_process(stale)
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        pidfile.write_text(f"{proc.pid}\n")
        try:
            wait_for(f"the registry at {what}", answers, 30)
        except LabError as exc:
            raise LabError(f"{exc}; see {log_path}") from exc
        return f"started docker-registry on {addr} (pid {proc.pid})", True

    def _plain_registry_config(self) -> str:
        """Plain HTTP, no auth, read-only over the TLS registry's storage: the same images and digests."""
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.paths.registry_dir / "data")},
                "maintenance": {"readonly": {"enabled": True}, "uploadpurging": {"enabled": False}},
            },
            "http": {"addr": PLAIN_REGISTRY, "secret": (self.paths.registry_dir / "http-secret").read_text().strip()},
        }
        text: str = yaml.safe_dump(config, sort_keys=False)
        return text

    def _plain_registry_answers(self) -> bool:
        try:
            response = requests.get(f"http://{PLAIN_REGISTRY}/v2/", timeout=2, proxies={"http": "", "https": ""})
        except requests.RequestException:
            return False
        return response.status_code == 200

    def _registry_config(self, htpasswd: Path) -> str:
        p = self.paths
        secret_file = p.registry_dir / "http-secret"
        if not secret_file.exists():
            write_if_changed(secret_file, secrets.token_hex(16), 0o600)
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(p.registry_dir / "data")},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {
                "addr": REGISTRY,
                "secret": secret_file.read_text().strip(),
                "tls": {"certificate": str(p.server_cert), "key": str(p.server_key)},
            },
            "auth": {"htpasswd": {"realm": "dockhand-lab", "path": str(htpasswd)}},
        }
        text: str = yaml.safe_dump(config, sort_keys=False)
        return text

    def _registry_answers(self) -> bool:
        try:
            response = requests.get(f"https://{REGISTRY}/v2/", verify=str(self.paths.ca_cert), timeout=2)
        except requests.RequestException:
            return False
        return response.status_code == 401

    def _registry_session(self, password: str) -> requests.Session:
        session = requests.Session()
        # Otherwise REQUESTS_CA_BUNDLE (set on these machines) silently replaces session.verify.
        session.trust_env = False
        session.auth = (REGISTRY_USER, password)
        session.verify = str(self.paths.ca_cert)
        return session

    # ------------------------------------------------------------------ test images

    def ensure_images(self, note: PhaseNote, password: str) -> dict[str, ImageInfo]:
        session = self._registry_session(password)
        context_hash = sha256_of(tree_hash(IMAGES_DIR / "app").encode(), tree_hash(IMAGES_DIR / "tool").encode(),
                                 BUSYBOX.read_bytes())
        recorded = self._recorded_images(context_hash)
        if recorded and all(self._registry_digest(session, info.repo, info.tag) == info.digest for info in recorded.values()):
            note.reuse(f"registry has {', '.join(sorted(recorded))} with the recorded digests")
            return recorded

        build = self.paths.build_dir
        images: dict[str, ImageInfo] = {}
        for name in ("app", "tool"):
            context = build / name
            shutil.rmtree(context, ignore_errors=True)
            shutil.copytree(IMAGES_DIR / name, context)
            shutil.copy2(BUSYBOX, context / "busybox")
        auth = {"username": REGISTRY_USER, "password": password}
        for tag, www in (("v1", "www-v1"), ("v2", "www-v2"), ("broken", "www-broken")):
            images[tag] = self._build_and_push(build / "app", APP_REPO, tag, {"WWW": www}, auth, session)
        images["tool"] = self._build_and_push(build / "tool", TOOL_REPO, "latest", {}, auth, session)
        images["multi"] = self._push_index(session, images["v1"], images["v2"])
        write_if_changed(
            self.paths.images_record,
            json.dumps({"context_hash": context_hash, "images": {k: vars(v) for k, v in images.items()}}, indent=2),
        )
        note.make(f"built and pushed {', '.join(sorted(images))}")
        return images

    def _recorded_images(self, context_hash: str) -> dict[str, ImageInfo]:
        try:
            record = json.loads(self.paths.images_record.read_text())
        except (OSError, ValueError):
            return {}
        if record.get("context_hash") != context_hash:
            return {}
        return {tag: ImageInfo.from_dict(info) for tag, info in record["images"].items()}

    def _build_and_push(
        self, context: Path, repo: str, tag: str, buildargs: dict[str, str], auth: dict[str, str], session: requests.Session
    ) -> ImageInfo:
        tagged = f"{repo}:{tag}"
        start = time.monotonic()
        try:
            self.client.images.build(
                path=str(context), tag=tagged, buildargs=buildargs, labels=LABELS,
                rm=True, forcerm=True, pull=False, network_mode="none",
            )  # fmt: skip
        except docker.errors.BuildError as exc:
            log = "".join(str(line.get("stream", line.get("error", ""))) for line in exc.build_log)
            raise LabError(f"building {tagged} from {context} failed: {exc}\n{log}") from exc
        built = time.monotonic()
        pushed_digest = ""
        for line in self.client.images.push(repo, tag=tag, auth_config=auth, stream=True, decode=True):
            if "error" in line:
                raise LabError(f"pushing {tagged} failed: {line['error']}")
            pushed_digest = (line.get("aux") or {}).get("Digest", pushed_digest)
        digest = self._registry_digest(session, repo, tag)
        if not digest or (pushed_digest and pushed_digest != digest):
            raise LabError(f"pushed {tagged} (digest {pushed_digest!r}) but the registry reports {digest!r}")
        print(f"    {tagged}: built in {built - start:.1f} s, pushed in {time.monotonic() - built:.1f} s", flush=True)
        return ImageInfo(repo=repo, tag=tag, digest=digest, pinned=f"{repo}@{digest}", tagged=tagged)

    def _registry_digest(self, session: requests.Session, repo: str, reference: str) -> str | None:
        path = repo.split("/", 1)[1]
        try:
            response = session.head(
                f"https://{REGISTRY}/v2/{path}/manifests/{reference}",
                headers={"Accept": f"{MEDIA_MANIFEST}, {MEDIA_MANIFEST_LIST}"},
                timeout=10,
            )
        except requests.RequestException:
            return None
        return response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None

    def _push_index(self, session: requests.Session, amd64: ImageInfo, arm64: ImageInfo) -> ImageInfo:
        """Publish ``app:multi``: a manifest list naming v1 as linux/amd64 and v2 as linux/arm64."""
        path = APP_REPO.split("/", 1)[1]
        entries = []
        for info, arch in ((amd64, "amd64"), (arm64, "arm64")):
            response = session.get(
                f"https://{REGISTRY}/v2/{path}/manifests/{info.digest}", headers={"Accept": MEDIA_MANIFEST}, timeout=10
            )
            response.raise_for_status()
            entries.append({
                "mediaType": MEDIA_MANIFEST,
                "size": len(response.content),
                "digest": info.digest,
                "platform": {"architecture": arch, "os": "linux"},
            })  # fmt: skip
        body = json.dumps({"schemaVersion": 2, "mediaType": MEDIA_MANIFEST_LIST, "manifests": entries}, indent=3).encode()
        response = session.put(
            f"https://{REGISTRY}/v2/{path}/manifests/multi",
            data=body,
            headers={"Content-Type": MEDIA_MANIFEST_LIST},
            timeout=10,
        )
        if response.status_code != 201:
            raise LabError(f"pushing the index {APP_REPO}:multi failed: {response.status_code} {response.text}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if response.headers.get("Docker-Content-Digest") != digest:
            raise LabError(f"registry stored {APP_REPO}:multi as {response.headers.get('Docker-Content-Digest')}, not {digest}")
        return ImageInfo(
            repo=APP_REPO, tag="multi", digest=digest, pinned=f"{APP_REPO}@{digest}", tagged=f"{APP_REPO}:multi",
            platforms={"linux/amd64": amd64.digest, "linux/arm64": arm64.digest},
        )  # fmt: skip

    # ------------------------------------------------------------------ nodes

    def ensure_host_plugin(self, note: PhaseNote) -> None:
        """The lab's volume plugin (images/node/volume-plugin.py, the nodes' driver) on this machine's engine too, as
        the managed plugin ``dockhand-lab-host``.

        Its rootfs holds only the plugin's script; the host's ``/usr`` (Python) is bound into it read-only. Each volume
        is a directory under the plugin's ``/data``, that is under the plugin's rootfs in the engine's data root.
        """
        plugin_py = (IMAGES_DIR / "node" / "volume-plugin.py").read_bytes()
        config = {
            "description": "",
            "documentation": "https://github.com/dockhand/containers/blob/main/tests/lab/README.md",
            "entrypoint": ["/usr/bin/python3", "/plugin.py", "/run/docker/plugins/dhl.sock", "/data"],
            "interface": {"types": ["docker.volumedriver/1.0"], "socket": "dhl.sock"},
            "network": {"type": "host"},
            "mounts": [{"source": "/usr", "destination": "/usr", "type": "bind", "options": ["rbind", "ro"]}],
            "linux": {"capabilities": []},
        }
        recipe = sha256_of(plugin_py, json.dumps(config, sort_keys=True).encode())[:12]
        config["description"] = f"dockhand lab volume plugin (recipe {recipe})"
        current = self._host_plugin()
        if current is not None and current.get("Enabled") and recipe in str(current["Config"].get("Description")):
            note.reuse(f"{HOST_PLUGIN_REF} (recipe {recipe})")
            return
        if current is not None:
            self._remove_host_plugin()
        build = self.paths.build_dir / "host-plugin"
        if build.exists():
            shutil.rmtree(build)
        rootfs = build / "rootfs"
        for directory in ("usr", "run/docker/plugins", "data", "tmp", "etc", "proc", "sys", "dev"):
            (rootfs / directory).mkdir(parents=True)
        for link in ("bin", "lib", "lib64"):
            (rootfs / link).symlink_to(f"usr/{link}")
        (rootfs / "plugin.py").write_bytes(plugin_py)
        (build / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        run(["docker", "plugin", "create", HOST_PLUGIN_REF, str(build)])
        run(["docker", "plugin", "enable", HOST_PLUGIN_REF])
        shutil.rmtree(build)
        note.make(f"{HOST_PLUGIN_REF} (recipe {recipe}) created and enabled")

    def _host_plugin(self) -> dict[str, Any] | None:
        try:
            plugin: dict[str, Any] = self.client.api.inspect_plugin(HOST_PLUGIN_REF)
        except docker.errors.NotFound:
            return None
        return plugin

    def host_plugin_data(self) -> str:
        """Where the host plugin keeps its volumes, on this machine (empty when it is not installed)."""
        plugin = self._host_plugin()
        if plugin is None:
            return ""
        return f"{self.client.info()['DockerRootDir']}/plugins/{plugin['Id']}/rootfs/data/volumes"

    def _remove_host_plugin(self) -> list[str]:
        """Remove the host plugin's volumes, then the plugin (force: it is ours, whoever still mounts a volume)."""
        removed: list[str] = []
        if self._host_plugin() is None:
            return removed
        for volume in self.client.volumes.list():
            if volume.attrs.get("Driver") == HOST_PLUGIN_REF:
                for container in self.client.containers.list(all=True, filters={"volume": volume.name}):
                    container.remove(force=True)
                    removed.append(f"container {container.name} (used volume {volume.name})")
                volume.remove(force=True)
                removed.append(f"volume {volume.name} ({HOST_PLUGIN_REF})")
        run(["docker", "plugin", "disable", "--force", HOST_PLUGIN_REF])
        run(["docker", "plugin", "rm", "--force", HOST_PLUGIN_REF])
        removed.append(f"plugin {HOST_PLUGIN_REF}")
        return removed

    def ensure_ssh_key(self, note: PhaseNote) -> None:
        key = self.paths.ssh_key
        if key.exists() and key.with_suffix(".pub").exists():
            note.reuse(str(key))
            return
        key.parent.mkdir(parents=True, exist_ok=True)
        key.parent.chmod(0o700)
        key.unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dockhand-lab", "-f", str(key)])
        note.make(f"made {key}")

    def ensure_node_image(self, note: PhaseNote) -> str:
        """The node image's id, built from the cached debootstrap rootfs when it is missing or out of date."""
        recipe = self._node_recipe_hash()
        with contextlib.suppress(docker.errors.ImageNotFound):
            image = self.client.images.get(NODE_IMAGE)
            if image.labels.get(f"{LABEL}.recipe") == recipe:
                note.reuse(f"{NODE_IMAGE} {image.short_id}")
                return str(image.id)
        steps = []
        rootfs_tar = CACHE_DIR / f"node-rootfs-{_debootstrap_hash()[:12]}.tar"
        if not rootfs_tar.exists():
            self._debootstrap(rootfs_tar)
            steps.append("debootstrapped rootfs")
        base_recipe = rootfs_tar.name
        base: Any = None
        with contextlib.suppress(docker.errors.ImageNotFound):
            base = self.client.images.get(NODE_BASE_IMAGE)
        if base is None or base.labels.get(f"{LABEL}.rootfs") != base_recipe:
            repo, tag = NODE_BASE_IMAGE.split(":")
            self.client.api.import_image_from_file(
                str(rootfs_tar), repository=repo, tag=tag, changes=[f"LABEL {LABEL}=1 {LABEL}.rootfs={base_recipe}"]
            )
            steps.append(f"imported {rootfs_tar.name}")
        context = self.paths.build_dir / "node"
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(IMAGES_DIR / "node", context)
        run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
             "--target", str(context / "pip-sdk"), NODE_DOCKER_SDK])  # fmt: skip
        try:
            image, _build_log = self.client.images.build(
                path=str(context), tag=NODE_IMAGE, labels={**LABELS, f"{LABEL}.recipe": recipe},
                rm=True, forcerm=True, pull=False, network_mode="none",
            )  # fmt: skip
        except docker.errors.BuildError as exc:
            raise LabError(f"building {NODE_IMAGE} failed: {exc}") from exc
        steps.append(f"built {NODE_IMAGE}")
        note.make(", ".join(steps))
        return str(image.id)

    def _node_recipe_hash(self) -> str:
        return sha256_of(_debootstrap_hash().encode(), tree_hash(IMAGES_DIR / "node").encode(), NODE_DOCKER_SDK.encode())[:16]

    def _debootstrap(self, rootfs_tar: Path) -> None:
        """debootstrap bookworm once and keep the result as a tarball so rebuilding after ``down`` is fast."""
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        for old in CACHE_DIR.glob("node-rootfs-*.tar"):
            old.unlink()
        work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIR))
        try:
            run(["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}", "bookworm", str(work),
                 DEBIAN_MIRROR], timeout=1200)  # fmt: skip
            # Downloaded .debs, docs and the builder's host keys and hostname have no place in the image.
            for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_Packages", "etc/ssh/ssh_host_*",
                            "usr/share/doc/*", "usr/share/man/*"):  # fmt: skip
                for path in work.glob(pattern):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            (work / "etc/hostname").write_text("node\n")
            partial = rootfs_tar.with_suffix(".partial")
            run(["tar", "-C", str(work), "--numeric-owner", "-cf", str(partial), "."], timeout=600)
            partial.replace(rootfs_tar)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def ensure_nodes(self, note: PhaseNote, image_id: str, password: str) -> list[Node]:
        nodes = [self._node_record(i) for i in range(1, NODE_COUNT + 1)]
        self._write_node_files(nodes, password)
        reused, made = [], []
        for index, node in enumerate(nodes, start=1):
            config = self._node_config_hash(node, image_id)
            if self._node_current(node, config):
                reused.append(node.name)
                continue
            self._remove_container(node.container)
            self._create_node(index, node, image_id, config)
            made.append(node.name)
        for node in nodes:
            self._wait_node_ready(node)
        if made:
            note.make(f"started {', '.join(made)}" + (f"; reused {', '.join(reused)}" if reused else ""))
        else:
            note.reuse(f"reused {', '.join(reused)}")
        return nodes

    def _node_record(self, index: int) -> Node:
        name = f"node{index}"
        return Node(
            name=name,
            container=f"dockhand-{name}",
            ip=node_ip(index),
            ssh_port=2220 + index,
            app_port=18080 + index,
            docker_socket=self.paths.node_dir(name) / "docker.sock",
            sdk=node_sdk(name),
        )

    def _write_node_files(self, nodes: list[Node], password: str) -> None:
        auth = base64.b64encode(f"{REGISTRY_USER}:{password}".encode()).decode()
        docker_config = json.dumps({"auths": {REGISTRY: {"auth": auth}}}, indent=2) + "\n"
        public_key = self.paths.ssh_key.with_suffix(".pub").read_text()
        for node in nodes:
            directory = self.paths.node_dir(node.name)
            directory.mkdir(parents=True, exist_ok=True)
            write_if_changed(directory / "ca.crt", self.paths.ca_cert.read_bytes())
            write_if_changed(directory / "docker-config.json", docker_config, 0o600)
            write_if_changed(directory / "authorized_keys", public_key, 0o600)

    def _node_config_hash(self, node: Node, image_id: str) -> str:
        directory = self.paths.node_dir(node.name)
        files = [(directory / f).read_bytes() for f in ("ca.crt", "docker-config.json", "authorized_keys")]
        return sha256_of(image_id.encode(), node.ip.encode(), str(node.ssh_port).encode(), str(node.app_port).encode(),
                         str(directory).encode(), PLAIN_REGISTRY.encode(), node_sdk(node.name).encode(),
                         *files)[:16]  # fmt: skip

    def _node_current(self, node: Node, config: str) -> bool:
        try:
            container = self.client.containers.get(node.container)
        except docker.errors.NotFound:
            return False
        if container.status != "running" or container.labels.get(f"{LABEL}.config") != config:
            return False
        return self._node_engine_answers(node) and self._node_ssh_works(node)

    def _create_node(self, index: int, node: Node, image_id: str, config: str,
                     entrypoint: list[str] | None = None) -> None:
        api = self.client.api
        volume = f"{node.container}-docker"
        self.client.volumes.create(volume, labels=LABELS)  # idempotent: an existing volume is reused
        host_config = api.create_host_config(
            cap_add=["ALL"],
            cap_drop=["SYS_RESOURCE"],  # the sandbox lacks it, which is why --privileged fails here
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            binds=[
                "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                f"{self.paths.node_dir(node.name)}:/lab:rw",
                f"{volume}:/var/lib/docker:rw",
            ],
            port_bindings={22: ("127.0.0.1", node.ssh_port), 8080: ("127.0.0.1", node.app_port)},
            restart_policy={"Name": "no"},
        )
        networking = api.create_networking_config({NETWORK: api.create_endpoint_config(ipv4_address=node.ip)})
        created = api.create_container(
            image=image_id,
            name=node.container,
            hostname=node.name,
            environment={
                "DOCKHAND_LAB_REGISTRY": REGISTRY,
                "DOCKHAND_LAB_INSECURE_REGISTRY": PLAIN_REGISTRY,
                "DOCKHAND_LAB_SDK": node_sdk(node.name),
            },
            labels={**LABELS, f"{LABEL}.node": node.name, f"{LABEL}.config": config},
            ports=[22, 8080],
            host_config=host_config,
            networking_config=networking,
            stop_signal="SIGTERM",
            detach=True,
            entrypoint=entrypoint,
        )
        node.docker_socket.unlink(missing_ok=True)
        api.start(created["Id"])

    def _wait_node_ready(self, node: Node) -> None:
        def ready() -> bool:
            container = self.client.containers.get(node.container)
            if container.status != "running":
                logs = container.logs(tail=30).decode(errors="replace")
                raise LabError(f"{node.container} stopped ({container.status}); its output:\n{logs}")
            return self._node_engine_answers(node) and self._node_ssh_works(node)

        try:
            wait_for(f"{node.name}'s engine on {node.docker_socket} and sshd on port {node.ssh_port}", ready, 90, 0.5)
        except LabError as exc:
            raise LabError(f"{exc}\nlook inside: docker exec {node.container} tail /var/log/dockerd.log /var/log/sshd.log") from exc

    def _node_engine_answers(self, node: Node) -> bool:
        if not node.docker_socket.is_socket():
            return False
        try:
            client = node.client(timeout=5)  # asks the engine its version: fails when it is going away
        except Exception:  # any failure means "not yet": the caller waits or rebuilds
            return False
        try:
            return bool(client.ping())
        except Exception:  # any failure means "not yet": the caller waits or rebuilds
            return False
        finally:
            client.close()

    def ssh_command(self, node: Node, command: str) -> list[str]:
        return [
            "ssh", "-i", str(self.paths.ssh_key), "-p", str(node.ssh_port),
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3", "root@127.0.0.1", command,
        ]  # fmt: skip

    def _node_ssh_works(self, node: Node) -> bool:
        # One round trip proves sshd, the key, python3 and the docker SDK that our modules import.
        probe = self.ssh_command(node, "python3 -c 'import docker; print(docker.__version__)'")
        try:
            proc = subprocess.run(probe, capture_output=True, text=True, timeout=15, check=False)
        except subprocess.TimeoutExpired:
            return False
        return proc.returncode == 0 and proc.stdout.strip() == node_sdk_version(node.name)

    # ------------------------------------------------------------------ haproxy

    def ensure_haproxy(self, note: PhaseNote) -> None:
        p = self.paths
        p.haproxy_dir.mkdir(parents=True, exist_ok=True)
        changed = write_if_changed(p.haproxy_config, self._haproxy_config(), 0o600)
        pid = our_pid(p.haproxy_pidfile, str(p.haproxy_config))
        if pid is not None and not changed and p.haproxy_socket.is_socket() and port_listening("127.0.0.1", HAPROXY_FRONTEND_PORT):
            note.reuse(f"frontend 127.0.0.1:{HAPROXY_FRONTEND_PORT} (pid {pid})")
            return
        for stale in {pid, *pids_naming(str(p.haproxy_config))} - {None}:
            assert stale is not None
            stop_process(stale)
        p.haproxy_socket.unlink(missing_ok=True)
        run(["haproxy", "-c", "-q", "-f", str(p.haproxy_config)])
        run(["haproxy", "-D", "-p", str(p.haproxy_pidfile), "-f", str(p.haproxy_config)])
        wait_for("haproxy's admin socket and frontend",
                 lambda: p.haproxy_socket.is_socket() and port_listening("127.0.0.1", HAPROXY_FRONTEND_PORT), 15)  # fmt: skip
        note.make(f"started haproxy (pid {our_pid(p.haproxy_pidfile, str(p.haproxy_config))}) "
                  f"on 127.0.0.1:{HAPROXY_FRONTEND_PORT}")  # fmt: skip

    def _haproxy_config(self, nodes: list[Node] | None = None, socket_path: Path | None = None,
                        frontend_port: int = HAPROXY_FRONTEND_PORT) -> str:
        """The lab's haproxy over node1..3 by default; the spare nodes' own with ``nodes`` and its socket and port."""
        nodes = nodes if nodes is not None else [self._node_record(i) for i in range(1, NODE_COUNT + 1)]
        servers = "\n".join(f"    server {node.name} 127.0.0.1:{node.app_port} check" for node in nodes)
        return f"""# dockhand lab load balancer (written by tests/lab/lab.py)
global
    stats socket {socket_path or self.paths.haproxy_socket} mode 600 level admin
    stats timeout 30s

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A request that hits a node mid-restart goes to another node instead of failing.
    retries 3
    option redispatch

frontend app
    bind 127.0.0.1:{frontend_port}
    default_backend app

backend app
    option httpchk GET /health
    http-check expect status 200
    # Fast checks so tests see a node leave and rejoin within a few seconds.
    default-server inter 1s fall 2 rise 2
{servers}
"""

    # ------------------------------------------------------------------ spare nodes

    def spare_record(self, index: int) -> Node:
        name = f"spare{index}"
        return Node(
            name=name,
            container=f"dockhand-{name}",
            ip=f"172.30.213.{50 + index}",
            ssh_port=2250 + index,
            app_port=18150 + index,
            docker_socket=self.paths.node_dir(name) / "docker.sock",
            sdk=node_sdk(name),
        )

    def up_spares(self, count: int) -> SpareSet:
        """Fresh spare nodes ``dockhand-spare1..count`` (empty engines) and an haproxy of their own over them.

        For tests that stop a node's engine or sshd, which the shared nodes must never see. They are made from the
        lab's node image like node1..3 (about 1 s each), with an entrypoint that keeps the node up when its engine
        or sshd stops, so :meth:`stop_engine`/:meth:`start_engine`/:meth:`stop_sshd`/:meth:`start_sshd` can
        act on them. Labelled ``dockhand.lab=1``: ``lab.py down`` removes them too. Needs the lab up.
        """
        if not 1 <= count <= SPARE_MAX:
            raise LabError(f"spare nodes: 1 to {SPARE_MAX} (asked for {count})")
        state = load_state(self.paths.root)
        if state is None or not state.complete:
            raise LabError(f"the lab is not up ({self.paths.root}): run `lab.py up` first")
        with exclusive_lock(self.paths.lock):
            image_id = self.ensure_node_image(PhaseNote())
        self.down_spares()
        nodes = [self.spare_record(index) for index in range(1, count + 1)]
        self._write_node_files(nodes, state.registry_password)
        for index, node in enumerate(nodes, start=1):
            write_if_changed(self.paths.node_dir(node.name) / "spare-entrypoint.sh", self._spare_entrypoint(), 0o755)
            self._create_node(index, node, image_id, "spare", entrypoint=["/bin/bash", "/lab/spare-entrypoint.sh"])
        for node in nodes:
            self._wait_node_ready(node)
        p = self.paths
        p.spare_haproxy_config.parent.mkdir(parents=True, exist_ok=True)
        write_if_changed(p.spare_haproxy_config,
                         self._haproxy_config(nodes, p.spare_haproxy_socket, SPARE_HAPROXY_FRONTEND_PORT), 0o600)
        p.spare_haproxy_socket.unlink(missing_ok=True)
        run(["haproxy", "-c", "-q", "-f", str(p.spare_haproxy_config)])
        run(["haproxy", "-D", "-p", str(p.spare_haproxy_pidfile), "-f", str(p.spare_haproxy_config)])
        wait_for("the spare nodes' haproxy", lambda: p.spare_haproxy_socket.is_socket()
                 and port_listening("127.0.0.1", SPARE_HAPROXY_FRONTEND_PORT), 15)  # fmt: skip
        return SpareSet(nodes=nodes, haproxy_socket=p.spare_haproxy_socket,
                        frontend_url=f"http://127.0.0.1:{SPARE_HAPROXY_FRONTEND_PORT}")

    def down_spares(self) -> list[str]:
        """Remove every spare node (container and engine volume) and their haproxy; what was removed."""
        removed: list[str] = []
        for container in self.client.containers.list(all=True, filters={"name": "dockhand-spare"}):
            if container.name.startswith("dockhand-spare"):
                container.remove(v=True, force=True)
                removed.append(f"container {container.name}")
        for volume in self.client.volumes.list(filters={"label": f"{LABEL}=1"}):
            if volume.name.startswith("dockhand-spare"):
                with contextlib.suppress(docker.errors.NotFound):
                    volume.remove(force=True)
                    removed.append(f"volume {volume.name}")
        p = self.paths
        for pid in {our_pid(p.spare_haproxy_pidfile, str(p.spare_haproxy_config)),
                    *pids_naming(str(p.spare_haproxy_config))} - {None}:  # fmt: skip
            assert pid is not None
            stop_process(pid)
            removed.append(f"haproxy pid {pid}")
        return removed

    @staticmethod
    def _spare_entrypoint() -> str:
        """The node entrypoint, except that the node stays up when a daemon stops (it stops on ``docker stop``)."""
        text = (IMAGES_DIR / "node" / "entrypoint.sh").read_text()
        wait_line = 'wait -n "${sshd_pid}" "${dockerd_pid}" "${plugin_pid}" || true'
        if wait_line not in text:
            raise LabError(f"{IMAGES_DIR / 'node' / 'entrypoint.sh'} no longer has the line the spare nodes replace: "
                           f"{wait_line}")  # fmt: skip
        return text.replace(wait_line, "sleep infinity & wait $! || true")

    def _exec(self, node: Node, command: str, detach: bool = False) -> str:
        container = self.client.containers.get(node.container)
        code, output = container.exec_run(["/bin/sh", "-c", command], detach=detach)
        text = output.decode(errors="replace") if isinstance(output, bytes) else ""
        if not detach and code != 0:
            raise LabError(f"{node.container}: `{command}` failed ({code}): {text}")
        return text

    def stop_engine(self, node: Node) -> None:
        """Stop a spare node's dockerd (SIGTERM: it stops its containers first); sshd keeps running."""
        self._exec(node, "kill -TERM $(cat /var/run/docker.pid)")
        wait_for(f"{node.name}'s engine to stop", lambda: not self._node_engine_answers(node)
                 and not self._exec(node, "cat /var/run/docker.pid 2>/dev/null || true").strip(), 60)  # fmt: skip

    def start_engine(self, node: Node) -> None:
        """Start a spare node's dockerd again, as its entrypoint does."""
        self._exec(node, "rm -f /lab/docker.sock /var/run/docker.sock /var/run/docker.pid; "
                         "exec dockerd --storage-driver=vfs --iptables=false "
                         f"--insecure-registry {PLAIN_REGISTRY} -H unix:///var/run/docker.sock "
                         "-H unix:///lab/docker.sock >>/var/log/dockerd.log 2>&1", detach=True)  # fmt: skip
        wait_for(f"{node.name}'s engine to answer", lambda: self._node_engine_answers(node), 60)

    def stop_sshd(self, node: Node) -> None:
        """Stop a spare node's sshd, its open sessions too (an SSH control master included); the engine keeps running."""
        self._exec(node, "for pid in $(ps -C sshd -o pid=); do kill -TERM $pid; done")
        wait_for(f"{node.name}'s sshd to stop", lambda: not self._exec(node, "ps -C sshd -o pid= || true").strip()
                 and not self._node_ssh_works(node), 30)  # fmt: skip

    def start_sshd(self, node: Node) -> None:
        self._exec(node, "exec /usr/sbin/sshd -D -e 2>>/var/log/sshd.log", detach=True)
        wait_for(f"{node.name}'s sshd to answer", lambda: self._node_ssh_works(node), 30)

    def prune_superseded_images(self) -> None:
        """Rebuilt images leave their predecessors untagged; drop those no container uses any more."""
        for image in self.client.images.list(filters={"label": f"{LABEL}=1", "dangling": True}):
            with contextlib.suppress(docker.errors.APIError):
                self.client.images.remove(image.id)

    # ------------------------------------------------------------------ outputs

    def describe(self, password: str, images: dict[str, ImageInfo], nodes: list[Node], complete: bool) -> LabState:
        p = self.paths
        return LabState(
            dir=p.root,
            inventory=p.inventory,
            deploy_vars=p.deploy_vars,
            registry=REGISTRY,
            plain_registry=PLAIN_REGISTRY,
            registry_username=REGISTRY_USER,
            registry_password=password,
            ca_cert=p.ca_cert,
            ssh_private_key=p.ssh_key,
            images=images,
            nodes=nodes,
            haproxy_socket=p.haproxy_socket,
            frontend_url=f"http://127.0.0.1:{HAPROXY_FRONTEND_PORT}",
            local_docker_host=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
            complete=complete,
            host_volume_driver=HOST_PLUGIN_REF if complete else "",
            host_volume_data=self.host_plugin_data() if complete else "",
        )

    def write_inventory(self, state: LabState) -> None:
        node_hosts = {
            node.name: {
                **ssh_host_vars(node, state.ssh_private_key),
                "dockhand_lab_app_port": node.app_port,
                "dockhand_lab_docker_socket": str(node.docker_socket),
                "dockhand_lab_sdk": node.sdk,
            }
            for node in state.nodes
        }
        inventory = {
            "all": {
                "vars": {
                    "dockhand_lab_registry": state.registry,
                    "dockhand_lab_plain_registry": state.plain_registry,
                    "dockhand_lab_registry_username": state.registry_username,
                    "dockhand_lab_registry_password": state.registry_password,
                    "dockhand_lab_images": {tag: vars(info) for tag, info in state.images.items()},
                },
                "children": {
                    "nodes": {"hosts": node_hosts},
                    "local": {
                        "hosts": {
                            "localhost": {
                                "ansible_connection": "local",
                                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                            }
                        }
                    },
                },
            }
        }
        header = "# Written by tests/lab/lab.py up; rewritten on every run.\n"
        write_if_changed(state.inventory, header + yaml.safe_dump(inventory, sort_keys=False), 0o600)
        deploy_vars = {
            "dockhand_registry": state.registry,
            "dockhand_registry_username": state.registry_username,
            "dockhand_registry_password": state.registry_password,
            "dockhand_demo_image": state.images["v1"].tagged,
        }
        write_if_changed(state.deploy_vars, header + yaml.safe_dump(deploy_vars, sort_keys=False), 0o600)

    # ------------------------------------------------------------------ status

    def status(self) -> bool:
        state = load_state(self.paths.root)
        ok = True

        def line(good: bool, text: str) -> None:
            nonlocal ok
            ok = ok and good
            print(f"  [{'up' if good else '--'}] {text}")

        print(f"lab status: state dir {self.paths.root}" + ("" if state else " (no state.json)"))
        try:
            self.client.ping()
            line(True, f"engine: Docker Engine {self.client.version()['Version']}")
        except Exception as exc:  # status reports, it never raises
            line(False, f"engine: not answering ({exc})")
            return False
        nets = [n for n in self.client.networks.list(names=[NETWORK]) if n.name == NETWORK]
        line(bool(nets), f"network {NETWORK}" + (f" {SUBNET}" if nets else ": missing"))
        reg_pid = our_pid(self.paths.registry_pidfile, str(self.paths.registry_config))
        line(reg_pid is not None and self._registry_answers(), f"registry https://{REGISTRY} (pid {reg_pid})")
        plain_pid = our_pid(self.paths.plain_registry_pidfile, str(self.paths.plain_registry_config))
        line(plain_pid is not None and self._plain_registry_answers(),
             f"registry http://{PLAIN_REGISTRY} (plain HTTP, read-only; pid {plain_pid})")
        if state:
            session = self._registry_session(state.registry_password)
            for tag, info in sorted(state.images.items()):
                line(self._registry_digest(session, info.repo, info.tag) == info.digest, f"image {info.tagged} {info.digest}")
        for index in range(1, NODE_COUNT + 1):
            node = self._node_record(index)
            try:
                status = self.client.containers.get(node.container).status
            except docker.errors.NotFound:
                status = "missing"
            healthy = status == "running" and self._node_engine_answers(node) and self._node_ssh_works(node)
            line(healthy, f"{node.container}: {status}, ssh 127.0.0.1:{node.ssh_port}, app 127.0.0.1:{node.app_port}, "
                          f"engine {node.docker_socket}")  # fmt: skip
        plugin = self._host_plugin()
        line(bool(plugin and plugin.get("Enabled")), f"volume plugin {HOST_PLUGIN_REF} on this engine"
             + ("" if plugin else ": missing"))
        ha_pid = our_pid(self.paths.haproxy_pidfile, str(self.paths.haproxy_config))
        line(ha_pid is not None, f"haproxy frontend 127.0.0.1:{HAPROXY_FRONTEND_PORT} (pid {ha_pid})")
        if ha_pid is not None:
            for server, status in self.haproxy_servers().items():
                print(f"         backend app/{server}: {status}")
        return ok

    def haproxy_servers(self) -> dict[str, str]:
        """Backend server -> status (UP/DOWN/MAINT...) from haproxy's runtime API."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(self.paths.haproxy_socket))
                sock.sendall(b"show stat\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return {}
        rows = data.decode().splitlines()
        if not rows:
            return {}
        header = rows[0].lstrip("# ").split(",")
        servers = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(",")))
            if fields.get("pxname") == "app" and fields.get("svname") not in ("FRONTEND", "BACKEND", None):
                servers[fields["svname"]] = fields.get("status", "?")
        return servers

    # ------------------------------------------------------------------ down

    def down(self, purge: bool) -> None:
        start = time.monotonic()
        print(f"lab down: state dir {self.paths.root}", flush=True)
        removed: list[str] = []
        try:
            engine_up = bool(self.client.ping())
        except Exception:  # no engine means no Docker objects to remove
            engine_up = False
        if engine_up:
            removed += self._remove_docker_objects()
            removed += self._remove_host_plugin()
        for config, pidfile, what in (
            (self.paths.haproxy_config, self.paths.haproxy_pidfile, "haproxy"),
            (self.paths.spare_haproxy_config, self.paths.spare_haproxy_pidfile, "haproxy (spare nodes)"),
            (self.paths.registry_config, self.paths.registry_pidfile, "docker-registry"),
            (self.paths.plain_registry_config, self.paths.plain_registry_pidfile, "docker-registry (plain HTTP)"),
        ):
            pids = {our_pid(pidfile, str(config)), *pids_naming(str(config))} - {None}
            for pid in pids:
                assert pid is not None
                stop_process(pid)
                removed.append(f"{what} pid {pid}")
        if OUTER_CERTS_D.exists():
            shutil.rmtree(OUTER_CERTS_D)
            removed.append(str(OUTER_CERTS_D))
        if self.paths.root.exists():
            shutil.rmtree(self.paths.root)
            removed.append(str(self.paths.root))
        self.paths.lock.unlink(missing_ok=True)
        if purge and CACHE_DIR.exists():
            shutil.rmtree(CACHE_DIR)
            removed.append(str(CACHE_DIR))
        for item in removed:
            print(f"  removed {item}")
        print(f"lab down: {time.monotonic() - start:.1f} s ({len(removed)} things removed)", flush=True)

    def _remove_docker_objects(self) -> list[str]:
        """Remove the lab's containers, volumes, network and images.

        Other people's runs may start a container from a lab image while this runs (then an image removal
        conflicts), so it makes up to three passes and only fails if something is still left after them.
        """
        removed: list[str] = []
        failures: list[str] = []
        for _attempt in range(3):
            failures = []
            self._remove_lab_containers(removed, failures)
            for volume in self.client.volumes.list(filters={"label": f"{LABEL}=1"}):
                self._try_remove(f"volume {volume.name}", partial(volume.remove, force=True), removed, failures)
            for net in self.client.networks.list(names=[NETWORK]):
                if net.name == NETWORK:
                    self._try_remove(f"network {NETWORK}", partial(self._remove_network, net), removed, failures)
            images = self.client.images.list(filters={"label": f"{LABEL}=1"})
            # Children before parents so no removal fails on "image has dependent child images".
            for image in sorted(images, key=lambda i: len(i.history()), reverse=True):
                what = f"image {', '.join(image.tags) or image.short_id}"
                self._try_remove(what, partial(self.client.images.remove, image.id, force=True), removed, failures)
            if not failures:
                return removed
        raise LabError("could not remove: " + "; ".join(failures))

    def _remove_lab_containers(self, removed: list[str], failures: list[str]) -> None:
        # The nodes, and any container made from a lab image (containers inherit their image's labels).
        containers = {c.id: c for c in self.client.containers.list(all=True, filters={"label": f"{LABEL}=1"})}
        for c in self.client.containers.list(all=True, filters={"name": "dockhand-node"}):
            containers.setdefault(c.id, c)
        for container in containers.values():
            self._try_remove(f"container {container.name}", partial(self._stop_and_remove, container), removed, failures)

    @staticmethod
    def _stop_and_remove(container: Any) -> None:
        if container.status == "running":
            container.stop(timeout=20)  # lets a node's dockerd stop its own containers cleanly
        container.remove(v=True, force=True)

    @staticmethod
    def _remove_network(net: Any) -> None:
        net.reload()
        for container_id in net.attrs.get("Containers") or {}:
            net.disconnect(container_id, force=True)  # the network is ours, whoever joined it
        net.remove()

    @staticmethod
    def _try_remove(what: str, remove: Callable[[], object], removed: list[str], failures: list[str]) -> None:
        try:
            remove()
        except docker.errors.NotFound:
            return  # already gone, e.g. removed with its container
        except docker.errors.APIError as exc:
            failures.append(f"{what}: {exc.explanation or exc}")
            return
        removed.append(what)

    def _remove_container(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._stop_and_remove(self.client.containers.get(name))


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """One ``up``/``down`` at a time: parallel test sessions must not repair the same lab at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _package_installed(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return proc.stdout.strip() == "install ok installed"


def _htpasswd_matches(htpasswd: Path, user: str, password: str) -> bool:
    if not htpasswd.exists():
        return False
    return subprocess.run(["htpasswd", "-vb", str(htpasswd), user, password], capture_output=True, check=False).returncode == 0


def _debootstrap_hash() -> str:
    return sha256_of(b"bookworm", b"minbase", DEBOOTSTRAP_PACKAGES.encode(), DEBIAN_MIRROR.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create or repair the lab")
    up.add_argument("--only", choices=["registry"], help="only the engine, network, CA, registry and images")
    down = commands.add_parser("down", help="remove everything the lab created")
    down.add_argument("--purge", action="store_true", help=f"also remove the rootfs cache {CACHE_DIR}")
    commands.add_parser("status", help="say what is up")
    args = parser.parse_args(argv)

    lab = Lab(lab_dir())
    try:
        if args.command == "status":
            return 0 if lab.status() else 1
        with exclusive_lock(lab.paths.lock):
            if args.command == "up":
                lab.up(only_registry=args.only == "registry")
            else:
                lab.down(purge=args.purge)
    except (LabError, docker.errors.DockerException, subprocess.CalledProcessError) as exc:
        print(f"lab {args.command}: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
