from __future__ import annotations

import io
import json
from email.message import Message
from typing import Any
from urllib.error import HTTPError

import pytest

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
