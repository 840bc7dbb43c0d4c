from __future__ import annotations

import base64
import io
import json
import os
from email.message import Message
from typing import Any
from urllib.error import HTTPError

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils import _registry
from ansible_collections.dockhand.containers.plugins.module_utils._engine import EngineAPIError
from ansible_collections.dockhand.containers.plugins.module_utils._image_ref import parse_image_ref
from ansible_collections.dockhand.containers.plugins.module_utils._registry import (
    Credentials, Platform, RegistryClient, RegistryError, resolve,
)

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
D = {n: "sha256:" + n * 64 for n in "0123"}


class StubClient:
    """Stands in for the HTTP layer only: resolve() is the logic under test."""

    def __init__(self, documents: dict[str, tuple[str, str, dict[str, Any]]], blobs: dict[str, dict[str, Any]]) -> None:
        self.documents = documents
        self.blobs = blobs

    def manifest(self, reference: str) -> tuple[str, str, dict[str, Any]]:
        return self.documents[reference]

    def blob_json(self, digest: str) -> dict[str, Any]:
        return self.blobs[digest]


def index_client() -> StubClient:
    index = {"mediaType": INDEX, "manifests": [
        {"digest": D["1"], "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": D["2"], "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    ]}
    return StubClient({"multi": (D["0"], INDEX, index)}, {})


def test_index_resolves_to_index_digest_and_the_platform_image() -> None:
    resolved = resolve(parse_image_ref("reg:5000/app:multi"), index_client(), Platform.parse("linux/arm/v7"))  # type: ignore[arg-type]
    assert resolved.digest == D["0"] and resolved.index_digest == D["0"]
    assert resolved.platform == {"os": "linux", "architecture": "arm", "variant": "v7", "digest": D["2"]}
    assert resolved.as_dict()["pinned"] == "reg:5000/app@" + D["0"]


def test_index_without_the_platform_lists_what_it_offers() -> None:
    with pytest.raises(RegistryError, match="no image for platform linux/s390x .*linux/amd64, linux/arm/v7") as caught:
        resolve(parse_image_ref("reg:5000/app:multi"), index_client(), Platform.parse("linux/s390x"))  # type: ignore[arg-type]
    assert caught.value.kind == "platform"


def test_single_manifest_reports_its_platform_from_the_config() -> None:
    client = StubClient({"v1": (D["1"], MANIFEST, {"mediaType": MANIFEST, "config": {"digest": D["3"]}})},
                        {D["3"]: {"os": "linux", "architecture": "amd64"}})
    resolved = resolve(parse_image_ref("reg:5000/app:v1"), client, Platform.parse("linux/amd64"))  # type: ignore[arg-type]
    assert (resolved.digest, resolved.index_digest, resolved.platform["architecture"]) == (D["1"], None, "amd64")


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_bad_platform_is_refused(text: str) -> None:
    with pytest.raises(RegistryError, match="os/architecture"):
        Platform.parse(text)


def http_error(code: int, body: dict[str, Any] | None = None) -> HTTPError:
    return HTTPError("https://reg/v2/x", code, "err", Message(), io.BytesIO(json.dumps(body or {}).encode()))


@pytest.mark.parametrize("code, body, path, kind", [
    (404, {"errors": [{"code": "NAME_UNKNOWN"}]}, "/manifests/v1", "unknown_repository"),
    (404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}, "/manifests/v9", "unknown_tag"),
    (404, {}, "/manifests/" + D["1"], "unknown_digest"),
    (401, {}, "/manifests/v1", "auth"),
    (403, {}, "/manifests/v1", "auth"),
    (500, {}, "/manifests/v1", "registry"),
])
def test_registry_answers_become_distinct_error_kinds(code: int, body: dict[str, Any], path: str, kind: str) -> None:
    client = RegistryClient(parse_image_ref("reg:5000/app"), Credentials("u", "p"))
    assert client._http_error(http_error(code, body), path).kind == kind


# --------------------------------------------------------------------------------------------- docker config


def write_config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, config: dict[str, Any]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))


def test_auths_entry_of_the_docker_config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = base64.b64encode(b"me:s3:cret").decode()
    write_config(tmp_path, monkeypatch, {"auths": {"https://reg:5000/v1/": {"auth": auth}}})
    found = _registry.credentials_from_docker_config("reg:5000")
    assert (found.username, found.password) == ("me", "s3:cret")
    assert not _registry.credentials_from_docker_config("other:5000").present


def test_cred_helper_wins_over_auths_and_is_asked_for_the_registry(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "docker-credential-test"
    helper.write_text('#!/bin/sh\nread -r s\nprintf \'{"Username":"u-%s","Secret":"p"}\' "$s"\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (tmp_path, os.environ["PATH"]))
    write_config(tmp_path, monkeypatch, {"credHelpers": {"reg:5000": "test"},
                                         "auths": {"reg:5000": {"auth": base64.b64encode(b"x:y").decode()}}})
    found = _registry.credentials_from_docker_config("reg:5000")
    assert (found.username, found.password) == ("u-reg:5000", "p")


def test_missing_cred_helper_names_the_program(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, {"credsStore": "no-such-helper-ph"})
    with pytest.raises(RegistryError, match="docker-credential-no-such-helper-ph") as caught:
        _registry.credentials_from_docker_config("reg:5000")
    assert caught.value.kind == "auth"


@pytest.mark.parametrize("registry, daemon, insecure", [
    ("127.0.0.1:5000", {}, True),
    ("localhost:5000", {}, True),
    ("[::1]:5000", {}, True),
    ("10.1.2.3:5000", {}, False),
    ("10.1.2.3:5000", {"insecure-registries": ["10.1.2.3:5000"]}, True),
    ("10.1.2.3:5000", {"insecure-registries": ["10.0.0.0/8"]}, True),
    ("reg.example:5000", {"insecure-registries": ["http://reg.example:5000"]}, True),
])
def test_insecure_registries_follow_the_engine_rules(tmp_path: Any, monkeypatch: pytest.MonkeyPatch, registry: str,
                                                     daemon: dict[str, Any], insecure: bool) -> None:
    (tmp_path / "daemon.json").write_text(json.dumps(daemon))
    monkeypatch.setattr(_registry, "DAEMON_JSON", str(tmp_path / "daemon.json"))
    assert _registry._insecure_by_the_engine_rules(registry) is insecure


# --------------------------------------------------------------------------------------------- Engine answers


class FakeEngine:
    where = "unix:///var/run/docker.sock"


@pytest.mark.parametrize("status, text, kind, hint", [
    (404, "manifest unknown: manifest unknown", "unknown_tag", "no such tag"),
    (500, 'Head "https://reg:5000/v2/a/manifests/v1": no basic auth credentials', "auth", "registry_username"),
    (500, 'Get "https://reg:5000/v2/": x509: certificate signed by unknown authority', "tls",
     "/etc/docker/certs.d/reg:5000/ca.crt"),
    (500, 'Get "https://reg:5000/v2/": http: server gave HTTP response to HTTPS client', "plain_http",
     "insecure-registries"),
    (500, 'Get "https://reg:5000/v2/": dial tcp 10.0.0.1:5000: connect: connection refused', "unreachable",
     "unreachable"),
    (500, "something else", "registry", "something else"),
])
def test_engine_answers_become_registry_errors_with_the_engine_side_fix(status: int, text: str, kind: str,
                                                                        hint: str) -> None:
    error = _registry._engine_registry_error(FakeEngine(), parse_image_ref("reg:5000/a:v1"),  # type: ignore[arg-type]
                                             EngineAPIError(status, text))
    assert error.kind == kind and hint in str(error)
