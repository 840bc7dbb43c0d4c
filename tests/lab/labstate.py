"""The lab's machine-readable state, shared by ``lab.py`` (writer) and the test fixtures (readers).

``lab.py up`` writes ``$DOCKHAND_LAB_DIR/state.json`` from a :class:`LabState`; ``tests/integration/conftest.py``
reads it back into the same dataclasses, so both sides agree on field names by construction.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

STATE_VERSION = 1
DEFAULT_LAB_DIR = "/tmp/dockhand-lab"
# The volume driver every lab node has (tests/lab/images/node/volume-plugin.py): a real non-local driver whose
# volumes are directories of the node that only the node's engine reaches (the host has no such driver).
VOLUME_PLUGIN = "dockhand-lab"


def lab_dir() -> Path:
    """The state directory: ``$DOCKHAND_LAB_DIR`` or ``/tmp/dockhand-lab``."""
    return Path(os.environ.get("DOCKHAND_LAB_DIR") or DEFAULT_LAB_DIR)


@dataclass(frozen=True)
class ImageInfo:
    """One test image in the lab registry.

    ``pinned`` is ``repo@digest`` (what deployments should use), ``tagged`` is ``repo:tag``.
    ``platforms`` is only filled for the multi-platform index (``multi``): platform -> manifest digest.
    """

    repo: str
    tag: str
    digest: str
    pinned: str
    tagged: str
    platforms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageInfo:
        return cls(
            repo=data["repo"],
            tag=data["tag"],
            digest=data["digest"],
            pinned=data["pinned"],
            tagged=data["tagged"],
            platforms=dict(data.get("platforms") or {}),
        )


@dataclass(frozen=True)
class Node:
    """One lab node: a container running sshd and its own Docker Engine."""

    name: str
    container: str
    ip: str
    ssh_port: int
    app_port: int
    docker_socket: Path
    sdk: str = "pip"  # the Docker SDK the node's python3 imports: "pip" (7.x) or "debian" (python3-docker 5.0.3)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.docker_socket}"

    def client(self, timeout: int = 60) -> docker.DockerClient:
        """A Docker SDK client talking to this node's own engine (not the outer one)."""
        import docker  # imported lazily so reading state needs no SDK

        return docker.DockerClient(base_url=self.docker_host, timeout=timeout)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        return cls(
            name=data["name"],
            container=data["container"],
            ip=data["ip"],
            ssh_port=int(data["ssh_port"]),
            app_port=int(data["app_port"]),
            docker_socket=Path(data["docker_socket"]),
            sdk=data.get("sdk", "pip"),
        )


@dataclass
class LabState:
    """Everything the lab created that a test or a playbook may need.

    ``complete`` is False after ``up --only registry`` (no nodes, no haproxy).
    """

    dir: Path
    inventory: Path
    deploy_vars: Path
    registry: str
    plain_registry: str
    registry_username: str
    registry_password: str
    ca_cert: Path
    ssh_private_key: Path
    images: dict[str, ImageInfo]
    nodes: list[Node]
    haproxy_socket: Path
    frontend_url: str
    local_docker_host: str
    complete: bool
    version: int = STATE_VERSION
    host_volume_driver: str = ""  # the managed volume plugin on this machine's engine (lab.py HOST_PLUGIN_REF)
    host_volume_data: str = ""  # where that plugin keeps each volume's directory, on this machine

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no lab node named {name!r}; nodes are {[n.name for n in self.nodes]}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _paths_to_str(asdict(self))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabState:
        return cls(
            dir=Path(data["dir"]),
            inventory=Path(data["inventory"]),
            deploy_vars=Path(data["deploy_vars"]),
            registry=data["registry"],
            plain_registry=data.get("plain_registry", ""),
            registry_username=data["registry_username"],
            registry_password=data["registry_password"],
            ca_cert=Path(data["ca_cert"]),
            ssh_private_key=Path(data["ssh_private_key"]),
            images={tag: ImageInfo.from_dict(info) for tag, info in data["images"].items()},
            nodes=[Node.from_dict(node) for node in data["nodes"]],
            haproxy_socket=Path(data["haproxy_socket"]),
            frontend_url=data["frontend_url"],
            local_docker_host=data["local_docker_host"],
            complete=bool(data["complete"]),
            version=int(data.get("version", 0)),
            host_volume_driver=str(data.get("host_volume_driver", "")),
            host_volume_data=str(data.get("host_volume_data", "")),
        )

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.state_file)


def load_state(directory: Path | None = None) -> LabState | None:
    """The saved state, or None when there is none (or it was written by an incompatible lab.py)."""
    state_file = (directory or lab_dir()) / "state.json"
    try:
        data = json.loads(state_file.read_text())
    except FileNotFoundError:
        return None
    if data.get("version") != STATE_VERSION:
        return None
    return LabState.from_dict(data)


def _paths_to_str(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {key: _paths_to_str(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_paths_to_str(item) for item in value]
    return value
