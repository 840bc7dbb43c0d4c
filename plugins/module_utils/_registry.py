# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolving a tag to a digest, without pulling: the registry options, and two resolvers.

- Where a module has a Docker Engine (``service``/``stack`` with ``pin: true``), the Engine resolves the tag through
  its distribution endpoint, so its own trust applies: ``certs.d`` CAs and client certificates, its
  ``insecure-registries`` list, mirrors. That is the view its pull will have.
- Where there is no Engine (``image_digest`` on a controller or in an execution environment), the registry's HTTP
  API is asked directly, seeing the registry as a local Docker Engine would: ``/etc/docker/certs.d/<registry>/``
  (``ca.crt``, ``*.cert`` + ``*.key``), the ``insecure-registries`` of ``/etc/docker/daemon.json`` and the loopback
  exception (HTTPS without verification, then plain HTTP), and the docker config's ``auths``, ``credHelpers`` and
  ``credsStore``. It needs no Docker SDK.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import ipaddress
import json
import os
import platform as _platform
import re
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.urls import open_url

from ._engine import EngineAPIError
from ._image_ref import ImageRef

if TYPE_CHECKING:
    from ._engine import Engine

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
CERTS_D = "/etc/docker/certs.d"
DAEMON_JSON = "/etc/docker/daemon.json"

_ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class RegistryError(Exception):
    """A failure a person can act on; ``kind`` lets callers and tests tell the cases apart."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "Platform":
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise RegistryError("bad_input", "platform %r must be os/architecture[/variant], e.g. linux/amd64" % text)
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def of_this_machine(cls) -> "Platform":
        machine = _platform.machine().lower()
        return cls("linux", _ARCH_ALIASES.get(machine, machine))

    def matches(self, entry: dict[str, Any]) -> bool:
        if entry.get("os") != self.os or entry.get("architecture") != self.architecture:
            return False
        return self.variant is None or entry.get("variant") in (None, self.variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Resolved:
    ref: ImageRef
    digest: str
    media_type: str
    platform: dict[str, Any]
    index_digest: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        return dict(
            digest=self.digest,
            pinned=self.ref.with_digest(self.digest).pinned,
            repository=self.ref.repository,
            tag=None if self.ref.digest else self.ref.tag_or_default,  # with a digest, no tag was resolved
            media_type=self.media_type,
            is_index=self.index_digest is not None,
            platform=self.platform,
        )


@dataclass
class Credentials:
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)

    @property
    def present(self) -> bool:
        return bool(self.username and self.password)


def _docker_config() -> dict[str, Any]:
    """The docker CLI's config file (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``), or {}."""
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    path = os.path.join(directory, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RegistryError("auth", "cannot read the docker config %s: %s" % (path, exc))
    return data if isinstance(data, dict) else {}


def _config_key(key: str) -> str:
    """``https://reg:5000/v1/`` and ``reg:5000`` name the same registry in a docker config."""
    key = re.sub(r"^[a-z]+://", "", key)
    return key.split("/", 1)[0]


def _from_helper(helper: str, registry: str) -> Credentials:
    """Ask ``docker-credential-<helper> get``, as the docker CLI does."""
    program = "docker-credential-" + helper
    try:
        done = subprocess.run([program, "get"], input=registry.encode(), capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RegistryError("auth", "credential helper %s for %s (from the docker config) failed: %s"
                            % (program, registry, exc))
    if done.returncode != 0:
        answer = (done.stdout or done.stderr).decode(errors="replace").strip()
        if "credentials not found" in answer.lower():
            return Credentials()
        raise RegistryError("auth", "credential helper %s for %s (from the docker config) failed: %s"
                            % (program, registry, answer or "exit %d" % done.returncode))
    try:
        found = json.loads(done.stdout)
    except ValueError:
        raise RegistryError("auth", "credential helper %s for %s answered something that is not JSON" % (program, registry))
    if found.get("Username") == "<token>":
        raise RegistryError("auth", "credential helper %s holds an identity token for %s, which only the docker CLI "
                            "can use: set registry_username and registry_password" % (program, registry))
    return Credentials(found.get("Username"), found.get("Secret"))


def credentials_from_docker_config(registry: str) -> Credentials:
    """The credentials ``docker pull`` would use for this registry: credHelpers, then auths, then credsStore."""
    config = _docker_config()
    helpers = {_config_key(k): v for k, v in (config.get("credHelpers") or {}).items()}
    if registry in helpers:
        return _from_helper(helpers[registry], registry)
    auths = {_config_key(k): v for k, v in (config.get("auths") or {}).items()}
    entry = auths.get(registry) or {}
    if entry.get("auth"):
        try:
            username, _sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise RegistryError("auth", "the docker config's auths entry for %s is not base64 user:password" % registry)
        return Credentials(username, password)
    if entry.get("username"):
        return Credentials(entry.get("username"), entry.get("password"))
    if config.get("credsStore"):
        return _from_helper(config["credsStore"], registry)
    return Credentials()


def _insecure_by_the_engine_rules(registry: str) -> bool:
    """Loopback registries and the local daemon.json ``insecure-registries`` (names or CIDRs), as dockerd decides."""
    host = registry.rsplit(":", 1)[0].strip("[]") if not registry.endswith("]") else registry.strip("[]")
    try:
        address: Optional[Any] = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if host == "localhost" or (address is not None and address.is_loopback):
        return True
    try:
        with open(DAEMON_JSON, encoding="utf-8") as handle:
            listed = json.load(handle).get("insecure-registries") or []
    except (OSError, ValueError, AttributeError):
        return False
    for entry in listed:
        if _config_key(str(entry)) == registry:
            return True
        if address is not None and "/" in str(entry):
            try:
                if address in ipaddress.ip_network(str(entry), strict=False):
                    return True
            except ValueError:
                continue
    return False


def _client_certificate(registry: str) -> tuple[Optional[str], Optional[str]]:
    """A ``*.cert`` with its ``*.key`` in the registry's certs.d directory, as dockerd presents them."""
    for cert in sorted(glob.glob(os.path.join(CERTS_D, registry, "*.cert"))):
        key = cert[:-len(".cert")] + ".key"
        if os.path.isfile(key):
            return cert, key
    return None, None


def _reason_text(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    return str(reason)


class RegistryClient:
    """Minimal Registry HTTP API v2 client: manifests and blobs, Basic and Bearer auth."""

    def __init__(self, ref: ImageRef, credentials: Credentials, *, timeout: int = 30,
                 ca_path: Optional[str] = None, validate_certs: bool = True) -> None:
        self.ref = ref
        self.credentials = credentials
        self.timeout = timeout
        # An insecure registry, as dockerd treats one: HTTPS without verification, else plain HTTP.
        self.insecure = not validate_certs or _insecure_by_the_engine_rules(ref.registry)
        self.scheme = "https"
        default_ca = os.path.join(CERTS_D, ref.registry, "ca.crt")
        self.ca_path = ca_path or (default_ca if os.path.isfile(default_ca) else None)
        self.client_cert, self.client_key = _client_certificate(ref.registry)
        self._authorization: Optional[str] = None

    @property
    def base_url(self) -> str:
        return "%s://%s/v2/%s" % (self.scheme, self.ref.registry_api_host, self.ref.path)

    def _open(self, method: str, url: str, headers: dict[str, str]) -> Any:
        return open_url(url, method=method, headers=headers, timeout=self.timeout, ca_path=self.ca_path,
                        validate_certs=not self.insecure, client_cert=self.client_cert, client_key=self.client_key,
                        follow_redirects="safe", use_proxy=False)

    def request(self, method: str, path: str, accept: str = ACCEPT) -> tuple[dict[str, str], bytes]:
        try:
            return self._request(method, path, accept)
        except RegistryError as exc:
            if not (self.insecure and self.scheme == "https" and exc.kind in ("tls", "unreachable", "plain_http")):
                raise
        self.scheme = "http"
        return self._request(method, path, accept)

    def _request(self, method: str, path: str, accept: str) -> tuple[dict[str, str], bytes]:
        url = self.base_url + path
        for attempt in (1, 2):
            headers = {"Accept": accept}
            if self._authorization:
                headers["Authorization"] = self._authorization
            try:
                response = self._open(method, url, headers)
                return {k.lower(): v for k, v in response.headers.items()}, response.read()
            except HTTPError as exc:
                if exc.code == 401 and attempt == 1:
                    self._authorization = self._authorize(exc.headers.get("WWW-Authenticate", ""))
                    continue
                raise self._http_error(exc, path)
            except (URLError, socket.timeout, ssl.SSLError, ConnectionError) as exc:
                raise self._transport_error(exc)
        raise RegistryError("auth", "registry %s refused the credentials after authenticating" % self.ref.registry)

    def _authorize(self, challenge: str) -> str:
        scheme, _sep, params_text = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        if scheme.lower() == "basic":
            if not self.credentials.present:
                raise RegistryError(
                    "auth", "registry %s needs credentials: none found in the docker config of this host "
                    "(docker login %s) and registry_username/registry_password are not set"
                    % (self.ref.registry, self.ref.registry))
            return "Basic " + self._basic_token()
        if scheme.lower() == "bearer" and params.get("realm"):
            query = {"service": params.get("service", ""),
                     "scope": params.get("scope") or "repository:%s:pull" % self.ref.path}
            headers = {"Authorization": "Basic " + self._basic_token()} if self.credentials.present else {}
            try:
                body = self._open("GET", params["realm"] + "?" + urlencode(query), headers).read()
            except HTTPError as exc:
                raise RegistryError("auth", "registry %s refused the credentials%s (token service answered %d)"
                                    % (self.ref.registry, self._for_user(), exc.code))
            except (URLError, socket.timeout, ssl.SSLError, ConnectionError) as exc:
                raise self._transport_error(exc)
            token = json.loads(body or b"{}")
            value = token.get("token") or token.get("access_token")
            if not value:
                raise RegistryError("auth", "registry %s token service returned no token" % self.ref.registry)
            return "Bearer " + value
        raise RegistryError("auth", "registry %s asked for unsupported authentication %r" % (self.ref.registry, challenge))

    def _basic_token(self) -> str:
        raw = "%s:%s" % (self.credentials.username, self.credentials.password)
        return base64.b64encode(raw.encode()).decode()

    def _for_user(self) -> str:
        return " for user %r" % self.credentials.username if self.credentials.username else ""

    def _http_error(self, exc: HTTPError, path: str) -> RegistryError:
        if exc.code == 401:
            return RegistryError("auth", "registry %s refused the credentials%s: check registry_username/"
                                 "registry_password or docker login" % (self.ref.registry, self._for_user()))
        if exc.code == 403:
            return RegistryError("auth", "registry %s denied access to %s%s"
                                 % (self.ref.registry, self.ref.repository, self._for_user()))
        if exc.code == 404:
            codes = set()
            try:
                codes = {e.get("code") for e in json.loads(exc.read() or b"{}").get("errors", [])}
            except (ValueError, AttributeError):
                pass
            if "NAME_UNKNOWN" in codes:
                return RegistryError("unknown_repository", "repository %s does not exist in registry %s"
                                     % (self.ref.path, self.ref.registry))
            wanted = path.rsplit("/", 1)[-1]
            kind = "unknown_digest" if wanted.startswith("sha256:") else "unknown_tag"
            what = "digest" if kind == "unknown_digest" else "tag"
            return RegistryError(kind, "%s %s not found in repository %s" % (what, wanted, self.ref.repository))
        return RegistryError("registry", "registry %s answered HTTP %d for %s" % (self.ref.registry, exc.code, path))

    def _transport_error(self, exc: BaseException) -> RegistryError:
        reason = _reason_text(exc)
        registry = self.ref.registry
        if "WRONG_VERSION_NUMBER" in reason or "record layer failure" in reason:
            return RegistryError(
                "plain_http", "registry %s answers plain HTTP, not HTTPS (%s): set registry_validate_certs=false to use "
                "it as an insecure registry, as Docker's insecure-registries would" % (registry, reason))
        if "CERTIFICATE_VERIFY_FAILED" in reason or isinstance(getattr(exc, "reason", None), ssl.SSLError):
            return RegistryError(
                "tls", "TLS verification of registry %s failed (%s): set registry_ca_path to the CA that signed its "
                "certificate (or install it as %s/%s/ca.crt), or registry_validate_certs=false for an insecure registry"
                % (registry, reason, CERTS_D, registry))
        return RegistryError("unreachable", "registry %s is unreachable (%s): check the address and that it is running"
                             % (registry, reason))

    def manifest(self, reference: str) -> tuple[str, str, dict[str, Any]]:
        """Fetch a manifest; return (digest, media type, body), verifying the body against the digest."""
        try:
            headers, body = self.request("GET", "/manifests/" + reference)
        except RegistryError as exc:
            if exc.kind in ("unknown_tag", "unknown_digest"):
                raise self._explain_missing(exc)
            raise
        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        claimed = headers.get("docker-content-digest", actual)
        if claimed != actual or (reference.startswith("sha256:") and reference != actual):
            raise RegistryError("integrity", "manifest %s of %s does not match its digest (got %s)"
                                % (reference, self.ref.repository, actual))
        document = json.loads(body)
        media_type = document.get("mediaType") or headers.get("content-type", "").split(";")[0]
        return actual, media_type, document

    def _explain_missing(self, missing: RegistryError) -> RegistryError:
        """A registry answers MANIFEST_UNKNOWN for an unknown repository too; its tag list tells them apart."""
        try:
            tags = json.loads(self.request("GET", "/tags/list", accept="application/json")[1] or b"{}").get("tags")
        except RegistryError as exc:
            return exc if exc.kind == "unknown_repository" else missing
        if not tags:
            return RegistryError("unknown_repository", "repository %s has no tags in registry %s"
                                 % (self.ref.path, self.ref.registry))
        shown = ", ".join(sorted(tags)[:20]) + (", ..." if len(tags) > 20 else "")
        return RegistryError(missing.kind, "%s (its tags: %s)" % (missing, shown))

    def blob_json(self, digest: str) -> dict[str, Any]:
        body = self.request("GET", "/blobs/" + digest, accept="*/*")[1]
        return json.loads(body)


def resolve(ref: ImageRef, client: RegistryClient, want: Platform) -> Resolved:
    """Resolve ``ref`` (tag or digest) to the digest to deploy and the digest that runs on ``want``."""
    digest, media_type, document = client.manifest(ref.digest or ref.tag_or_default)
    if media_type in INDEX_TYPES:
        for entry in document.get("manifests", []):
            plat = entry.get("platform", {})
            if want.matches(plat):
                info = dict(os=plat.get("os"), architecture=plat.get("architecture"),
                            variant=plat.get("variant"), digest=entry["digest"])
                return Resolved(ref, digest, media_type, info, index_digest=digest)
        offered = sorted(str(Platform(p.get("os", "?"), p.get("architecture", "?"), p.get("variant")))
                         for p in (e.get("platform", {}) for e in document.get("manifests", [])))
        raise RegistryError("platform", "%s has no image for platform %s (it offers: %s); set platform"
                            % (ref, want, ", ".join(offered) or "none"))
    if media_type not in MANIFEST_TYPES:
        raise RegistryError("registry", "%s has unsupported manifest type %r" % (ref, media_type))
    config = client.blob_json(document["config"]["digest"])
    info = dict(os=config.get("os"), architecture=config.get("architecture"),
                variant=config.get("variant"), digest=digest)
    return Resolved(ref, digest, media_type, info)


def resolve_reference(ref: ImageRef, *, username: Optional[str], password: Optional[str], platform: Optional[str],
                      timeout: int, ca_path: Optional[str] = None, validate_certs: bool = True) -> Resolved:
    """Resolve by asking the registry from here: credentials from params or the docker config."""
    credentials = Credentials(username, password) if username else credentials_from_docker_config(ref.registry)
    want = Platform.parse(platform) if platform else Platform.of_this_machine()
    client = RegistryClient(ref, credentials, timeout=timeout, ca_path=ca_path, validate_certs=validate_certs)
    return resolve(ref, client, want)


def registry_argument_spec() -> dict[str, Any]:
    """The registry options of every module that resolves or pulls (docs: the ``registry`` doc fragment)."""
    return dict(
        registry_username=dict(type="str"),
        registry_password=dict(type="str", no_log=True),
        platform=dict(type="str"),
        registry_ca_path=dict(type="path"),
        registry_validate_certs=dict(type="bool", default=True),
    )


REGISTRY_REQUIRED_TOGETHER = [("registry_username", "registry_password")]


def _engine_registry_error(engine: "Engine", ref: ImageRef, exc: EngineAPIError) -> RegistryError:
    """The Engine's registry client failed: say what the Engine saw, and what fixes it on the Engine's side."""
    text, registry, where = exc.explanation, ref.registry, engine.where
    if exc.status == 404 or "manifest unknown" in text:
        return RegistryError("unknown_tag", "%s: the registry has no such tag or repository (the Docker Engine at %s "
                             "answered: %s)" % (ref, where, text))
    if exc.status == 401 or "unauthorized" in text or "no basic auth credentials" in text:
        return RegistryError("auth", "registry %s refused %s (%s): set registry_username and registry_password, or "
                             "log in (docker login %s) on the host that runs the module: its docker config and "
                             "credential helpers are what the Engine is given" % (registry, ref, text, registry))
    if "x509:" in text or "certificate" in text:
        return RegistryError("tls", "the Docker Engine at %s cannot verify registry %s (%s): install the registry's CA as "
                             "%s/%s/ca.crt on the Engine's host; registry_ca_path is for modules that talk to the "
                             "registry themselves (image_digest)" % (where, registry, text, CERTS_D, registry))
    if "server gave HTTP response to HTTPS client" in text:
        return RegistryError("plain_http", "registry %s speaks plain HTTP and the Docker Engine at %s does not list it "
                             "as insecure (%s): add it to insecure-registries in the Engine's /etc/docker/daemon.json "
                             "and restart dockerd, or serve the registry over TLS" % (registry, where, text))
    if "dial tcp" in text or "no such host" in text or "timeout" in text:
        return RegistryError("unreachable", "registry %s is unreachable from the Docker Engine at %s (%s): check the "
                             "address and that it is running" % (registry, where, text))
    return RegistryError("registry", "the Docker Engine at %s could not resolve %s: %s" % (where, ref, text))


def tag_resolver(engine: "Engine", params: dict[str, Any]) -> Callable[[ImageRef], str]:
    """A resolver for ``pin: true``: the Engine asks the registry, once per distinct tag and module run.

    The digest is the one the Engine's pull of the tag would get (an index's own digest for a multi-platform tag),
    found with the Engine's trust, insecure-registries, mirrors and client certificates.
    """
    cache: dict[str, str] = {}
    wanted: list[Platform] = []

    def want() -> Platform:
        if not wanted:
            if params.get("platform"):
                wanted.append(Platform.parse(params["platform"]))
            else:
                os_arch = engine.os_arch()
                wanted.append(Platform(*os_arch))
        return wanted[0]

    def resolve_tag(ref: ImageRef) -> str:
        key = str(ref)
        if key not in cache:
            try:
                found = engine.distribution(key, pull_auth(params))
            except EngineAPIError as exc:
                raise _engine_registry_error(engine, ref, exc)
            digest = str(found["Descriptor"]["digest"])
            platforms = found.get("Platforms") or []
            if platforms and not any(want().matches(p) for p in platforms):
                offered = sorted(str(Platform(p.get("os", "?"), p.get("architecture", "?"), p.get("variant")))
                                 for p in platforms)
                raise RegistryError("platform", "%s has no image for platform %s (it offers: %s); set platform"
                                    % (ref, want(), ", ".join(offered)))
            cache[key] = digest
        return cache[key]

    return resolve_tag


def pull_auth(params: dict[str, Any]) -> Optional[dict[str, str]]:
    """Explicit pull credentials, or None so the Engine client uses the host's docker config."""
    if params.get("registry_username"):
        return {"username": params["registry_username"], "password": params["registry_password"]}
    return None
