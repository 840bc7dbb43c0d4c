# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resolving a tag to a digest by asking the registry's HTTP API, without pulling.

Trust and credentials follow what the Docker Engine on the same machine would use: the CA in
``/etc/docker/certs.d/<registry>/ca.crt`` and the auths (or credential helpers) of the docker
config file, so a tag resolves here exactly as ``docker pull`` would see it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform as _platform
import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.urls import open_url

from ._image_ref import ImageRef

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
            tag=self.ref.tag_or_default if not self.ref.digest or self.ref.tag else None,
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


def credentials_from_docker_config(registry: str) -> Credentials:
    """The credentials ``docker pull`` would use for this registry (config file or credential helper)."""
    try:
        from docker import auth as docker_auth
    except ImportError:
        return Credentials()
    try:
        config = docker_auth.load_config()
        found = config.resolve_authconfig(registry) or {}
    except Exception as exc:  # credential helper failures must not hide the real problem
        raise RegistryError("auth", "cannot read docker credentials for %s: %s" % (registry, exc))
    return Credentials(found.get("username") or found.get("Username"), found.get("password") or found.get("Password"))


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
        self.validate_certs = validate_certs
        default_ca = os.path.join(CERTS_D, ref.registry, "ca.crt")
        self.ca_path = ca_path or (default_ca if os.path.isfile(default_ca) else None)
        self._authorization: Optional[str] = None

    @property
    def base_url(self) -> str:
        return "https://%s/v2/%s" % (self.ref.registry_api_host, self.ref.path)

    def _open(self, method: str, url: str, headers: dict[str, str]) -> Any:
        return open_url(url, method=method, headers=headers, timeout=self.timeout, ca_path=self.ca_path,
                        validate_certs=self.validate_certs, follow_redirects="safe")

    def request(self, method: str, path: str, accept: str = ACCEPT) -> tuple[dict[str, str], bytes]:
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
        if "CERTIFICATE_VERIFY_FAILED" in reason or isinstance(getattr(exc, "reason", None), ssl.SSLError):
            return RegistryError(
                "tls", "TLS verification of registry %s failed (%s): set ca_path, or install its CA as %s/%s/ca.crt"
                % (self.ref.registry, reason, CERTS_D, self.ref.registry))
        return RegistryError("unreachable", "registry %s is unreachable (%s): check the address and that it is running"
                             % (self.ref.registry, reason))

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
    """Entry point used by modules: credentials from params or the docker config, then resolve."""
    credentials = Credentials(username, password) if username else credentials_from_docker_config(ref.registry)
    want = Platform.parse(platform) if platform else Platform.of_this_machine()
    client = RegistryClient(ref, credentials, timeout=timeout, ca_path=ca_path, validate_certs=validate_certs)
    return resolve(ref, client, want)


def registry_options() -> dict[str, Any]:
    """Options of modules that may resolve or pull (documented in the service doc fragment, REGISTRY)."""
    return dict(
        registry_username=dict(type="str"),
        registry_password=dict(type="str", no_log=True),
        platform=dict(type="str"),
    )


def tag_resolver(params: dict[str, Any], timeout: int = 30) -> Callable[[ImageRef], str]:
    """A resolver for ``pin: true``: each distinct tag is asked of the registry once per module run."""
    cache: dict[str, str] = {}

    def resolve_tag(ref: ImageRef) -> str:
        key = str(ref)
        if key not in cache:
            cache[key] = resolve_reference(ref, username=params.get("registry_username"),
                                           password=params.get("registry_password"),
                                           platform=params.get("platform"), timeout=timeout).digest
        return cache[key]

    return resolve_tag


def pull_auth(params: dict[str, Any]) -> Optional[dict[str, str]]:
    """Explicit pull credentials, or None so the Engine client uses the host's docker config."""
    if params.get("registry_username"):
        return {"username": params["registry_username"], "password": params["registry_password"]}
    return None
