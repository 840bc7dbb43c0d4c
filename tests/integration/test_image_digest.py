"""Scenarios: resolve a tag to its digest by asking the lab's TLS registry (with auth), without pulling - a plain
image, a multi-platform index per platform, a pinned reference checked to exist, and each way it can fail with its
own error_kind. The ground truth is the registry's own answer (its Docker-Content-Digest header) and the digest the
outer engine recorded when the lab pushed the image.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import LabState
from module_runner import EngineEvents, ModuleResult, Registry, run_module

pytestmark = pytest.mark.lab


def resolve(lab: LabState, image: str, *, check: bool = False, env: dict[str, str] | None = None,
            **extra: Any) -> ModuleResult:
    args: dict[str, Any] = dict(image=image, registry_username=lab.registry_username,
                                registry_password=lab.registry_password)
    args.update(extra)
    return run_module("image_digest", {k: v for k, v in args.items() if v is not None}, check=check, env=env)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def registry(lab: LabState) -> Registry:
    return Registry(lab)


@pytest.fixture(scope="module")
def app_path(lab: LabState) -> str:
    return lab.images["v1"].repo.split("/", 1)[1]


def test_v1_tag_resolves_to_the_digest_the_lab_pushed_without_pulling(lab: LabState, registry: Registry,
                                                                      app_path: str) -> None:
    v1 = lab.images["v1"]
    outer = docker.DockerClient(base_url=lab.local_docker_host)
    try:
        events = EngineEvents(outer).start()
        result = resolve(lab, v1.tagged).assert_ok()
        events.stop()
        pushed = outer.images.get(v1.tagged).attrs["RepoDigests"]
    finally:
        outer.close()
    assert result.changed is False
    assert result["digest"] == v1.digest == registry.tag_digest(app_path, "v1")
    assert f"{v1.repo}@{result['digest']}" in pushed  # what `docker push` recorded on the engine that built it
    assert result["pinned"] == v1.pinned
    assert result["repository"] == v1.repo and result["tag"] == "v1"
    assert result["is_index"] is False
    assert result["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert result["platform"]["os"] == "linux" and result["platform"]["architecture"] == "amd64"
    assert result["platform"]["digest"] == v1.digest
    assert events.of("image") == []  # resolved from the registry, nothing pulled


def test_multi_platform_index_reports_the_index_digest_and_each_platforms_digest(
        lab: LabState, registry: Registry, app_path: str) -> None:
    multi, v1, v2 = lab.images["multi"], lab.images["v1"], lab.images["v2"]
    listed = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
              for m in registry.index(app_path, "multi")["manifests"]}
    assert listed == {"linux/amd64": v1.digest, "linux/arm64": v2.digest}

    amd64 = resolve(lab, multi.tagged, platform="linux/amd64").assert_ok()
    assert amd64["is_index"] is True
    assert amd64["digest"] == multi.digest == registry.tag_digest(app_path, "multi")
    assert amd64["pinned"] == multi.pinned
    assert amd64["media_type"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert amd64["platform"] == {"os": "linux", "architecture": "amd64", "variant": None, "digest": v1.digest}

    arm64 = resolve(lab, multi.tagged, platform="linux/arm64").assert_ok()
    assert arm64["digest"] == multi.digest
    assert arm64["platform"]["digest"] == v2.digest and arm64["platform"]["architecture"] == "arm64"

    # No platform given: this machine's (x86_64 here, so amd64).
    default = resolve(lab, multi.tagged).assert_ok()
    assert default["platform"]["digest"] == v1.digest

    missing = resolve(lab, multi.tagged, platform="linux/s390x").assert_failed()
    assert missing["error_kind"] == "platform"
    assert "linux/s390x" in missing.msg and "linux/amd64" in missing.msg and "linux/arm64" in missing.msg


def test_pinned_references_are_checked_to_exist(lab: LabState) -> None:
    v1 = lab.images["v1"]
    pinned = resolve(lab, v1.pinned).assert_ok()
    assert pinned["digest"] == v1.digest and pinned["pinned"] == v1.pinned and pinned["tag"] is None

    tagged_and_pinned = resolve(lab, f"{v1.tagged}@{v1.digest}").assert_ok()
    assert tagged_and_pinned["digest"] == v1.digest and tagged_and_pinned["pinned"] == v1.pinned

    unknown = "sha256:" + secrets.token_hex(32)
    absent = resolve(lab, f"{v1.repo}@{unknown}").assert_failed()
    assert absent["error_kind"] == "unknown_digest"
    assert unknown in absent.msg and "not found" in absent.msg


def test_each_failure_has_its_own_error_kind_and_message(lab: LabState) -> None:
    repo = lab.images["v1"].repo
    down = f"127.0.0.1:{closed_port()}"
    failures = {
        "unknown_tag": resolve(lab, f"{repo}:no-such-tag"),
        "auth": resolve(lab, lab.images["v1"].tagged, registry_password="wrong-" + secrets.token_hex(4)),
        "unreachable": resolve(lab, f"{down}/dockhand/app:v1"),
        "bad_input": resolve(lab, f"{repo}:v1@sha256:not-hex"),
    }
    for kind, result in failures.items():
        result.assert_failed()
        assert result["error_kind"] == kind, f"expected {kind}\n{result.describe()}"
        assert "Traceback" not in result.msg
    assert "no-such-tag" in failures["unknown_tag"].msg
    assert "its tags:" in failures["unknown_tag"].msg and "v1" in failures["unknown_tag"].msg  # what does exist
    assert "refused the credentials" in failures["auth"].msg and "'dockhand'" in failures["auth"].msg
    assert down in failures["unreachable"].msg and "unreachable" in failures["unreachable"].msg
    assert "malformed digest" in failures["bad_input"].msg
    messages = [r.msg for r in failures.values()]
    assert len(set(messages)) == len(messages)


def test_unknown_repository_is_told_apart_from_an_unknown_tag(lab: LabState, registry: Registry) -> None:
    tags = registry.session.get(f"{registry.base}/dockhand/no-such-app/tags/list", timeout=10)
    assert tags.status_code == 404 and tags.json()["errors"][0]["code"] == "NAME_UNKNOWN"  # the registry knows
    result = resolve(lab, f"{lab.registry}/dockhand/no-such-app:v1").assert_failed()
    assert result["error_kind"] == "unknown_repository", result.describe()
    assert "dockhand/no-such-app" in result.msg and "does not exist" in result.msg


def test_without_credentials_it_says_where_they_would_come_from(lab: LabState, tmp_path: Path) -> None:
    # An empty docker config: neither the options nor the config file give credentials.
    result = resolve(lab, lab.images["v1"].tagged, registry_username=None, registry_password=None,
                     env={"DOCKER_CONFIG": str(tmp_path)}).assert_failed()
    assert result["error_kind"] == "auth"
    assert "needs credentials" in result.msg and "registry_username" in result.msg


def test_credentials_from_the_docker_config_file_are_used(lab: LabState, tmp_path: Path) -> None:
    auth = base64.b64encode(f"{lab.registry_username}:{lab.registry_password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {lab.registry: {"auth": auth}}}))
    result = resolve(lab, lab.images["v2"].tagged, registry_username=None, registry_password=None,
                     env={"DOCKER_CONFIG": str(tmp_path)}).assert_ok()
    assert result["digest"] == lab.images["v2"].digest


def test_check_mode_resolves_the_same_and_never_reports_a_change(lab: LabState) -> None:
    v2 = lab.images["v2"]
    checked = resolve(lab, v2.tagged, check=True).assert_ok()
    assert checked.changed is False
    assert checked["digest"] == v2.digest and checked["pinned"] == v2.pinned
