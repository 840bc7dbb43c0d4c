from __future__ import annotations

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._image_ref import ImageRefError, parse_image_ref

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, path, tag, digest", [
    ("busybox", "docker.io", "library/busybox", None, None),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
    ("team/app", "docker.io", "team/app", None, None),
    ("localhost/app:v1", "localhost", "app", "v1", None),
    ("172.30.213.1:5443/dockhand/app:v1", "172.30.213.1:5443", "dockhand/app", "v1", None),
    ("registry.example.com/a/b/c@" + DIGEST, "registry.example.com", "a/b/c", None, DIGEST),
    ("registry.example.com:5000/app:2.4@" + DIGEST, "registry.example.com:5000", "app", "2.4", DIGEST),
    ("[::1]:5000/app", "[::1]:5000", "app", None, None),
])
def test_parse_splits_registry_path_tag_digest(text: str, registry: str, path: str, tag: str, digest: str) -> None:
    ref = parse_image_ref(text)
    assert (ref.registry, ref.path, ref.tag, ref.digest) == (registry, path, tag, digest)


def test_pinned_keeps_docker_hub_implicit_like_the_cli() -> None:
    assert parse_image_ref("busybox@" + DIGEST).pinned == "busybox@" + DIGEST
    assert parse_image_ref("team/app:v1").with_digest(DIGEST).pinned == "team/app@" + DIGEST


def test_pinned_drops_the_tag_of_a_tag_and_digest_reference() -> None:
    ref = parse_image_ref("reg.example.com/app:v1@" + DIGEST)
    assert ref.pinned == "reg.example.com/app@" + DIGEST
    assert str(ref) == "reg.example.com/app:v1@" + DIGEST


def test_tag_defaults_to_latest_and_docker_hub_api_host() -> None:
    ref = parse_image_ref("busybox")
    assert ref.tagged == "busybox:latest"
    assert ref.registry_api_host == "registry-1.docker.io"
    assert parse_image_ref("reg:5000/x").registry_api_host == "reg:5000"


def test_pinned_without_digest_is_an_error() -> None:
    with pytest.raises(ImageRefError, match="carries no digest"):
        parse_image_ref("app:v1").pinned


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("app:v1 ", "white space"),
    ("app@sha256:1234", "malformed digest"),
    ("app@md5:" + "a" * 32, "malformed digest"),
    ("App/Upper", "invalid repository"),
    ("app:-bad", "invalid tag"),
    ("reg..example.com/app", "registry host"),
    ("app/", "invalid repository"),
])
def test_bad_references_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ImageRefError, match=message):
        parse_image_ref(text)


def test_with_digest_refuses_malformed_digest() -> None:
    with pytest.raises(ImageRefError, match="sha256"):
        parse_image_ref("app").with_digest("sha256:xyz")
