# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking to the Docker Engine: the client, errors translated into messages, and waits."""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable, Iterable, Optional, TypeVar

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ._connection import ConnectionParams

try:
    import docker
    from docker.errors import APIError, DockerException, NotFound
    from requests.exceptions import RequestException

    DOCKER_IMPORT_ERROR: Optional[str] = None
except ImportError:
    DOCKER_IMPORT_ERROR = traceback.format_exc()

# The oldest SDK the lab runs (Debian 12's python3-docker on node3); 5.0 has every APIClient call used here.
MIN_SDK = (5, 0)
T = TypeVar("T")


class EngineError(Exception):
    """An Engine failure rewritten for a person: what failed, where, and the Engine's own words."""


class EngineAPIError(EngineError):
    """The Engine answered with an error that a caller translates itself (its HTTP status and its own words)."""

    def __init__(self, status: int, explanation: str) -> None:
        super().__init__(explanation)
        self.status = status
        self.explanation = explanation


class EngineConflict(EngineError):
    """The Engine refused because the name is taken (HTTP 409): what a lock relies on."""


def _sdk_version() -> tuple[int, ...]:
    return tuple(int(p) for p in docker.__version__.split(".")[:2] if p.isdigit())


def _short(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class Engine:
    """A thin, typed wrapper over docker.APIClient that never lets a traceback reach the user."""

    def __init__(self, params: ConnectionParams, api_version: Optional[str] = None) -> None:
        tls_config = None
        if params.uses_tls:
            client_cert = (params.client_cert, params.client_key) if params.client_cert else None
            tls_config = docker.tls.TLSConfig(client_cert=client_cert, ca_cert=params.ca_path,
                                              verify=params.validate_certs)
        self.where = params.docker_host
        try:
            self.api = docker.APIClient(base_url=params.docker_host, tls=tls_config or False,
                                        timeout=params.timeout, version=api_version or "auto")
        except (DockerException, RequestException) as exc:
            raise EngineError("cannot reach the Docker Engine at %s (%s): is dockerd running, and is docker_host "
                              "right?" % (params.docker_host, exc))

    @property
    def api_version(self) -> str:
        """The API version negotiated with the Engine, so further clients can skip negotiating."""
        return str(self.api.api_version)

    @classmethod
    def from_module(cls, module: AnsibleModule) -> "Engine":
        if DOCKER_IMPORT_ERROR is not None:
            module.fail_json(msg=missing_required_lib("docker (Docker SDK for Python >= 5.0.3)"),
                             exception=DOCKER_IMPORT_ERROR)
        if _sdk_version() < MIN_SDK:
            module.fail_json(msg="the Docker SDK for Python on this host is %s; dockhand.containers needs >= 5.0.3 "
                                 "(Debian 12/Ubuntu 22.04: apt install python3-docker; elsewhere pip install docker)"
                                 % docker.__version__)
        params = ConnectionParams.from_params(module.params)
        problems = params.problems()
        if problems:
            module.fail_json(msg="; ".join(problems))
        try:
            return cls(params)
        except EngineError as exc:
            module.fail_json(msg=str(exc))
            raise  # unreachable: fail_json exits

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except APIError as exc:
            error = EngineConflict if exc.status_code == 409 else EngineError
            raise error("%s failed: %s" % (what, _short(str(exc.explanation or exc))))
        except (DockerException, RequestException) as exc:
            raise EngineError("%s failed talking to the Docker Engine at %s: %s" % (what, self.where, _short(str(exc))))

    def inspect(self, kind: str, fn: Callable[[str], dict[str, Any]], name: str) -> Optional[dict[str, Any]]:
        """Inspect one object; None when the Engine has no such object."""
        try:
            return fn(name)
        except NotFound:
            return None
        except (APIError, DockerException, RequestException) as exc:
            raise EngineError("inspecting %s %s failed: %s" % (kind, name, _short(str(exc))))

    # Containers
    def container(self, name: str) -> Optional[dict[str, Any]]:
        return self.inspect("container", self.api.inspect_container, name)

    def containers_with_label(self, label: str) -> list[dict[str, Any]]:
        found = self.call("listing containers", self.api.containers, all=True, filters={"label": label})
        result = []
        for summary in found:
            inspected = self.container(summary["Id"])
            if inspected is not None:
                result.append(inspected)
        return result

    def create_container(self, name: str, image: str, config: dict[str, Any], host_config: dict[str, Any],
                         networking: Optional[dict[str, Any]]) -> str:
        created = self.call("creating container %s" % name, self.api.create_container, image=image, name=name,
                            host_config=host_config, networking_config=networking, **config)
        return created["Id"]

    def start(self, container_id: str) -> None:
        self.call("starting container %s" % container_id[:12], self.api.start, container_id)

    def stop(self, container_id: str, timeout: int) -> None:
        self.call("stopping container %s" % container_id[:12], self.api.stop, container_id, timeout=timeout)

    def remove(self, container_id: str, anonymous_volumes: bool = False) -> None:
        # Named volumes are never removed here; anonymous ones only when asked (a helper container's).
        self.call("removing container %s" % container_id[:12], self.api.remove_container, container_id,
                  force=True, v=anonymous_volumes)

    def rename(self, container_id: str, name: str) -> None:
        self.call("renaming container %s to %s" % (container_id[:12], name), self.api.rename, container_id, name)

    def update(self, container_id: str, body: dict[str, Any]) -> None:
        """``docker update`` with Engine API field names (the SDK's update_container has no NanoCpus)."""
        def post() -> Any:
            return self.api._result(self.api._post_json(self.api._url("/containers/{0}/update", container_id),
                                                        data=body), True)
        self.call("updating container %s" % container_id[:12], post)

    def read_archive(self, container_id: str, path: str) -> Optional[bytes]:
        """A file of the container as a tar stream (get_archive); None when it has no such file."""
        try:
            stream, _stat = self.api.get_archive(container_id, path)
            return b"".join(stream)
        except NotFound:
            return None
        except (APIError, DockerException, RequestException) as exc:
            raise EngineError("reading %s from container %s failed: %s" % (path, container_id[:12], _short(str(exc))))

    def write_archive(self, container_id: str, directory: str, archive: bytes) -> None:
        self.call("writing into container %s" % container_id[:12], self.api.put_archive, container_id, directory,
                  archive)

    def connect(self, network: str, container_id: str, aliases: Optional[list[str]] = None) -> None:
        self.call("connecting %s to network %s" % (container_id[:12], network), self.api.connect_container_to_network,
                  container_id, network, aliases=aliases)

    def logs_tail(self, container_id: str, lines: int = 20) -> str:
        try:
            raw = self.api.logs(container_id, stdout=True, stderr=True, tail=lines)
        except (APIError, DockerException, RequestException) as exc:
            return "(logs unavailable: %s)" % exc
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    def wait_for(self, container_id: str, want: str, timeout: float, poll: float = 0.25) -> dict[str, Any]:
        """Wait until the container is ``running`` or ``healthy``; raise with health log and logs if not."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.container(container_id)
            if info is None:
                raise EngineError("container %s disappeared while waiting for it to be %s" % (container_id[:12], want))
            state = info["State"]
            health = (state.get("Health") or {}).get("Status")
            if want == "running" and state.get("Running") and not state.get("Restarting"):
                return info
            if want == "healthy" and health == "healthy":
                return info
            failed = not state.get("Running") and state.get("Status") in ("exited", "dead")
            if failed or health == "unhealthy" or time.monotonic() >= deadline:
                raise EngineError(self._not_ready_message(info, want, timeout, timed_out=not failed and health != "unhealthy"))
            time.sleep(poll)

    def _not_ready_message(self, info: dict[str, Any], want: str, timeout: float, timed_out: bool) -> str:
        state = info["State"]
        health_log = (state.get("Health") or {}).get("Log") or []
        last = health_log[-1] if health_log else None
        why = "did not become %s within %ss" % (want, timeout) if timed_out else (
            "exited with code %s" % state.get("ExitCode") if not state.get("Running") else "is unhealthy")
        parts = ["container %s (%s) %s" % (info["Name"].lstrip("/"), info["Id"][:12], why)]
        if last:
            parts.append("last health check: exit %s: %s" % (last.get("ExitCode"), (last.get("Output") or "").strip()))
        parts.append("last log lines:\n" + self.logs_tail(info["Id"]).rstrip())
        return "; ".join(parts)

    def system_time(self) -> str:
        """The Engine's own clock (RFC 3339), so ages of Engine objects never mix two machines' clocks."""
        return str(self.call("asking the Engine for its time", self.api.info).get("SystemTime") or "")

    # Images
    def image_ids(self) -> list[str]:
        return [str(i) for i in self.call("listing images", self.api.images, quiet=True)]

    def image(self, ref: str) -> Optional[dict[str, Any]]:
        return self.inspect("image", self.api.inspect_image, ref)

    def images(self) -> list[dict[str, Any]]:
        return list(self.call("listing images", self.api.images))

    def archive(self, container_id: str, path: str) -> Iterable[bytes]:
        """A tar stream of ``path`` in the container (also when it is not running: its volumes are mounted)."""
        found: tuple[Iterable[bytes], dict[str, Any]] = self.call(
            "reading %s from container %s" % (path, container_id[:12]), self.api.get_archive, container_id, path)
        return found[0]

    def pull(self, ref: str, auth: Optional[dict[str, str]] = None) -> dict[str, Any]:
        """Pull ``ref`` (normally repo@sha256:...); credentials default to the host's docker config."""
        stream = self.call("pulling %s" % ref, self.api.pull, ref, stream=True, decode=True, auth_config=auth)
        events: list[dict[str, Any]] = self.call("pulling %s" % ref, list, stream)
        for event in events:
            if "error" in event:
                raise EngineError("pulling %s failed: %s" % (ref, _short(str(event["error"]))))
        pulled = self.image(ref)
        if pulled is None:
            raise EngineError("pulling %s finished but the engine does not have the image" % ref)
        return pulled

    def distribution(self, ref: str, auth: Optional[dict[str, str]] = None) -> dict[str, Any]:
        """What ``ref`` names in its registry (``Descriptor`` digest, ``Platforms``), asked by the Engine itself, so
        its certs.d, insecure-registries and mirrors apply; ``auth`` None means the host's docker config."""
        try:
            found: dict[str, Any] = self.api.inspect_distribution(ref, auth_config=auth)
        except APIError as exc:
            raise EngineAPIError(exc.status_code or 0, _short(str(exc.explanation or exc)))
        except (DockerException, RequestException) as exc:
            raise EngineError("asking the Docker Engine at %s about %s failed: %s" % (self.where, ref, _short(str(exc))))
        return found

    def os_arch(self) -> tuple[str, str]:
        """The Engine's platform (what it pulls by default), e.g. ("linux", "amd64")."""
        version = self.call("reading the Engine's version", self.api.version)
        return str(version.get("Os", "linux")), str(version.get("Arch", "amd64"))

    # Volumes and networks
    def volume(self, name: str) -> Optional[dict[str, Any]]:
        return self.inspect("volume", self.api.inspect_volume, name)

    def create_volume(self, name: str, driver: str, options: dict[str, str], labels: dict[str, str]) -> None:
        self.call("creating volume %s" % name, self.api.create_volume, name=name, driver=driver,
                  driver_opts=options or None, labels=labels or None)

    def remove_volume(self, name: str) -> None:
        self.call("removing volume %s" % name, self.api.remove_volume, name)

    def volumes(self, filters: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
        found = self.call("listing volumes", self.api.volumes, filters=filters)
        return list((found or {}).get("Volumes") or [])

    def containers_summary(self) -> list[dict[str, Any]]:
        """Summaries (not inspects) of every container, running or not; they include ``Mounts``."""
        return list(self.call("listing containers", self.api.containers, all=True))

    def containers_using_volume(self, name: str) -> list[dict[str, Any]]:
        """Summaries (not inspects) of every container, running or not, that mounts the volume."""
        return list(self.call("listing the containers of volume %s" % name, self.api.containers, all=True,
                              filters={"volume": name}))

    def volume_drivers(self) -> list[str]:
        """The legacy drivers the Engine's info lists, and its enabled managed (v2) volume plugins."""
        info = self.call("reading the Engine's info", self.api.info)
        names = set((info.get("Plugins") or {}).get("Volume") or [])
        plugins = self.call("listing the Engine's plugins", self.api.plugins)
        for plugin in plugins or []:
            types = ((plugin.get("Config") or {}).get("Interface") or {}).get("Types") or []
            # Each type is "docker.volumedriver/1.0" (older Engines: {"Prefix": ..., "Capability": ..., ...}).
            if plugin.get("Enabled") and any(_capability(t) == "volumedriver" for t in types):
                names.add(str(plugin.get("Name")))
        return sorted(names)

    def network(self, name: str) -> Optional[dict[str, Any]]:
        return self.inspect("network", self.api.inspect_network, name)

    def create_network(self, name: str, labels: dict[str, str]) -> None:
        self.call("creating network %s" % name, self.api.create_network, name, driver="bridge", labels=labels)

    def host_config(self, **kwargs: Any) -> dict[str, Any]:
        return self.call("building host config", self.api.create_host_config, **kwargs)

    def networking_config(self, network: str, aliases: list[str]) -> dict[str, Any]:
        return self.api.create_networking_config({network: self.api.create_endpoint_config(aliases=aliases)})


def _capability(plugin_type: Any) -> str:
    """The capability of a managed plugin's interface type, as the Engine's plugin list gives it."""
    if isinstance(plugin_type, dict):
        return str(plugin_type.get("Capability") or "")
    return str(plugin_type).split("/", 1)[0].rsplit(".", 1)[-1]
