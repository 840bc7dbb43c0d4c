"""Scenarios: registries as the Docker Engine sees them.

- A plain-HTTP registry (the lab's read-only one on 172.30.213.1:5080): image_digest uses it when told it is insecure
  (registry_validate_certs=false) or when it is on a loopback address; service pin: true uses it when the Engine lists
  it in insecure-registries (the lab nodes) and says what to change when the Engine does not (the outer engine).
- Credential helpers from the docker config, on a controller without the Docker SDK.
- Resolution through the Engine presents the client certificate from the Engine's certs.d (a registry that demands
  one, started here over the lab registry's storage).
- Error messages name the option that fixes them; service and stack accept the same registry options.

The ground truth is the digest the lab pushed, and what each engine reports after the module ran.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
import yaml
from conftest import LabState, Node, RunPlaybook
from module_runner import ModuleResult, remove_service_objects, run_module

pytestmark = pytest.mark.lab

NODE_INDEX = 2
PREFIX = "ph-reg"
LOOPBACK_PORT = 19401
MTLS_PORT = 19402


def image_digest(image: str, **args: Any) -> ModuleResult:
    return run_module("image_digest", dict(image=image, **args))


def service(node_host: str, name: str, image: str, **args: Any) -> ModuleResult:
    return run_module("service", dict(name=name, image=image, pin=True, docker_host=node_host, **args))


@pytest.fixture
def clean_node(engine: Any) -> Iterator[Any]:
    remove_service_objects(engine, PREFIX)
    yield engine
    remove_service_objects(engine, PREFIX)


# --------------------------------------------------------------------------------------------- plain HTTP


class Forwarder:
    """127.0.0.1:PORT -> a TCP address: the lab's plain registry seen on a loopback address."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.target = target
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _addr = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def test_image_digest_uses_a_plain_http_registry_when_told_it_is_insecure(lab: LabState) -> None:
    v1 = lab.images["v1"]
    plain = f"{lab.plain_registry}/dockhand/app:v1"
    refused = image_digest(plain).assert_failed()
    assert refused["error_kind"] == "plain_http"
    assert "registry_validate_certs=false" in refused.msg and lab.plain_registry in refused.msg

    resolved = image_digest(plain, registry_validate_certs=False).assert_ok()
    assert resolved["digest"] == v1.digest
    assert resolved["pinned"] == f"{lab.plain_registry}/dockhand/app@{v1.digest}"


def test_image_digest_treats_a_loopback_registry_as_docker_does(lab: LabState) -> None:
    host, port = lab.plain_registry.split(":")
    forwarder = Forwarder(LOOPBACK_PORT, (host, int(port)))
    try:
        resolved = image_digest(f"127.0.0.1:{LOOPBACK_PORT}/dockhand/app:v2").assert_ok()
    finally:
        forwarder.close()
    assert resolved["digest"] == lab.images["v2"].digest


def test_pin_resolves_through_the_engines_insecure_registries(lab: LabState, node: Node, clean_node: Any) -> None:
    v1 = lab.images["v1"]
    name = f"{PREFIX}-plain"
    created = service(node.docker_host, name, f"{lab.plain_registry}/dockhand/app:v1").assert_ok()
    assert created["digest"] == v1.digest
    container = clean_node.containers.get(name)
    assert container.attrs["Config"]["Image"] == f"{lab.plain_registry}/dockhand/app@{v1.digest}"
    assert container.attrs["State"]["Running"] is True

    # The outer engine does not list the plain registry: the module says what to change there, and creates nothing.
    outer = docker.DockerClient(base_url=lab.local_docker_host)
    try:
        refused = service(lab.local_docker_host, name, f"{lab.plain_registry}/dockhand/app:v1").assert_failed()
        assert [c.name for c in outer.containers.list(all=True, ignore_removed=True, filters={"name": name})] == []
    finally:
        outer.close()
    assert "insecure-registries" in refused.msg and "daemon.json" in refused.msg and lab.plain_registry in refused.msg


# --------------------------------------------------------------------------------------------- credential helper


def test_credential_helper_of_the_docker_config_without_the_sdk(
        lab: LabState, run_playbook: RunPlaybook, tmp_path: Path) -> None:
    venv = tmp_path / "no-sdk"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import docker"], capture_output=True, check=False).returncode != 0

    bin_dir, asked = tmp_path / "bin", tmp_path / "asked.log"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-ph"
    helper.write_text(f"""#!/bin/sh
[ "$1" = get ] || exit 1
read -r server
echo "$server" >>{asked}
printf '{{"ServerURL":"%s","Username":"{lab.registry_username}","Secret":"{lab.registry_password}"}}' "$server"
""")
    helper.chmod(0o755)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {lab.registry: "ph"}}))
    play = [{
        "name": "Resolve with a credential helper, no Docker SDK",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": str(python)},
        "environment": {"DOCKER_CONFIG": str(config_dir), "PATH": f"{bin_dir}:/usr/bin:/bin"},
        "tasks": [{"name": "Resolve v2", "dockhand.containers.image_digest": {"image": lab.images["v2"].tagged}}],
    }]
    result = run_playbook(yaml.safe_dump(play)).assert_ok()
    assert result.task("Resolve v2", "localhost")["digest"] == lab.images["v2"].digest
    assert asked.read_text().split() == [lab.registry]


# --------------------------------------------------------------------------------------------- certs.d on the Engine


@dataclass
class MutualTLSRegistry:
    address: str
    ca: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _issue(directory: Path, name: str, subject: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (directory / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
    ext.write_text(extensions)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", subject)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "1", "-extfile", str(ext))
    return cert, key


@pytest.fixture(scope="module")
def mtls_registry(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MutualTLSRegistry]:
    """The lab registry's storage, read-only, over TLS that demands a client certificate from the test's own CA."""
    work = tmp_path_factory.mktemp("mtls")
    ca, ca_key = work / "ca.crt", work / "ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             str(ca_key), "-out", str(ca), "-days", "1", "-subj", "/CN=ph test CA")
    host = lab.registry.split(":")[0]
    server = _issue(work, "server", f"/CN={host}", (ca, ca_key), f"subjectAltName=IP:{host}\n")
    client = _issue(work, "client", "/CN=ph client", (ca, ca_key), "extendedKeyUsage=clientAuth\n")
    address = f"{host}:{MTLS_PORT}"
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(lab.dir / "registry" / "data")},
                    "maintenance": {"readonly": {"enabled": True}, "uploadpurging": {"enabled": False}}},
        "http": {"addr": address, "tls": {"certificate": str(server[0]), "key": str(server[1]),
                                          "clientcas": [str(ca)]}},
    }
    (work / "config.yml").write_text(yaml.safe_dump(config))
    log = (work / "registry.log").open("wb")
    proc = subprocess.Popen(["docker-registry", "serve", str(work / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    session = requests.Session()
    session.trust_env = False
    deadline = time.monotonic() + 30
    while True:
        try:
            if session.get(f"https://{address}/v2/", verify=str(ca), cert=(str(client[0]), str(client[1])),
                           timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (work / "registry.log").read_text()
        time.sleep(0.2)
    try:
        yield MutualTLSRegistry(address, ca, client[0], client[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _put_files(container: Any, directory: str, files: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    container.exec_run(["mkdir", "-p", directory])
    assert container.put_archive(directory, buffer.getvalue())


def test_pin_through_the_engine_presents_its_certs_d_client_certificate(
        lab: LabState, node: Node, clean_node: Any, mtls_registry: MutualTLSRegistry) -> None:
    v1 = lab.images["v1"]
    name, image = f"{PREFIX}-mtls", f"{mtls_registry.address}/dockhand/app:v1"
    certs_d = f"/etc/docker/certs.d/{mtls_registry.address}"
    outer = docker.DockerClient(base_url=lab.local_docker_host)
    node_container = outer.containers.get(node.container)
    try:
        # Without the CA on the Engine's host, the message names the file the Engine reads.
        untrusted = service(node.docker_host, name, image).assert_failed()
        assert f"{certs_d}/ca.crt" in untrusted.msg and "Engine" in untrusted.msg, untrusted.describe()

        _put_files(node_container, certs_d, {"ca.crt": mtls_registry.ca.read_bytes(),
                                             "client.cert": mtls_registry.client_cert.read_bytes(),
                                             "client.key": mtls_registry.client_key.read_bytes()})
        created = service(node.docker_host, name, image).assert_ok()
        assert created["digest"] == v1.digest
        container = clean_node.containers.get(name)
        assert container.attrs["Config"]["Image"] == f"{mtls_registry.address}/dockhand/app@{v1.digest}"
        assert container.attrs["State"]["Running"] is True
    finally:
        node_container.exec_run(["rm", "-rf", certs_d])
        outer.close()


# --------------------------------------------------------------------------------------------- our options


def test_tls_errors_name_registry_ca_path_and_it_fixes_them(lab: LabState, mtls_registry: MutualTLSRegistry) -> None:
    # The lab registry's certificate checked against another CA: the fix is our option, not the Engine's ca_path.
    wrong = image_digest(lab.images["v1"].tagged, registry_ca_path=str(mtls_registry.ca),
                         registry_username=lab.registry_username, registry_password=lab.registry_password)
    wrong.assert_failed()
    assert wrong["error_kind"] == "tls"
    assert "registry_ca_path" in wrong.msg and "set ca_path" not in wrong.msg
    fixed = image_digest(lab.images["v1"].tagged, registry_ca_path=str(lab.ca_cert),
                         registry_username=lab.registry_username, registry_password=lab.registry_password)
    assert fixed.assert_ok()["digest"] == lab.images["v1"].digest


def test_service_and_stack_accept_the_registry_options_of_image_digest(
        lab: LabState, node: Node, clean_node: Any) -> None:
    options = dict(registry_ca_path=str(lab.ca_cert), registry_validate_certs=True,
                   registry_username=lab.registry_username, registry_password=lab.registry_password)
    name = f"{PREFIX}-opts"
    one = service(node.docker_host, name, lab.images["v1"].tagged, **options).assert_ok()
    assert clean_node.containers.get(name).attrs["Config"]["Image"] == lab.images["v1"].pinned == one["image"]
    stack = run_module("stack", dict(name=f"{PREFIX}-stack", docker_host=node.docker_host, services=[
        dict(name=name, image=lab.images["v1"].tagged, pin=True)], **options))
    stack.assert_ok()
    assert stack.changed is False
