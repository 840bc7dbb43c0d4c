# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module that talks to a Docker Engine.

The options are documented once, in the ``dockhand.containers.connection`` docs fragment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from ansible.module_utils.basic import env_fallback

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60


def connection_argument_spec() -> dict[str, Any]:
    return dict(
        docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST, aliases=["docker_url"],
                         fallback=(env_fallback, ["DOCKER_HOST"])),
        tls=dict(type="bool", default=False, fallback=(env_fallback, ["DOCKER_TLS"])),
        validate_certs=dict(type="bool", default=False, aliases=["tls_verify"],
                            fallback=(env_fallback, ["DOCKER_TLS_VERIFY"])),
        ca_path=dict(type="path", aliases=["ca_cert", "tls_ca_cert"]),
        client_cert=dict(type="path", aliases=["tls_client_cert", "cert_path"]),
        client_key=dict(type="path", aliases=["tls_client_key", "key_path"]),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT, fallback=(env_fallback, ["DOCKER_TIMEOUT"])),
    )


@dataclass(frozen=True)
class ConnectionParams:
    docker_host: str
    tls: bool
    validate_certs: bool
    ca_path: Optional[str]
    client_cert: Optional[str]
    client_key: Optional[str]
    timeout: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "ConnectionParams":
        cert_dir = os.environ.get("DOCKER_CERT_PATH")
        ca_path, client_cert, client_key = params["ca_path"], params["client_cert"], params["client_key"]
        if cert_dir:
            ca_path = ca_path or os.path.join(cert_dir, "ca.pem")
            client_cert = client_cert or os.path.join(cert_dir, "cert.pem")
            client_key = client_key or os.path.join(cert_dir, "key.pem")
        return cls(
            docker_host=params["docker_host"],
            tls=params["tls"],
            validate_certs=params["validate_certs"],
            ca_path=ca_path,
            client_cert=client_cert,
            client_key=client_key,
            timeout=params["timeout"],
        )

    def problems(self) -> list[str]:
        found = []
        if self.timeout <= 0:
            found.append("timeout must be a positive number of seconds (got %d)" % self.timeout)
        if bool(self.client_cert) != bool(self.client_key):
            found.append("client_cert and client_key must be given together")
        if self.validate_certs and not self.ca_path:
            found.append("validate_certs=true needs ca_path (the CA that signed the engine's certificate)")
        if not self.docker_host:
            found.append("docker_host is empty; use e.g. unix:///var/run/docker.sock or tcp://host:2376")
        return found

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.validate_certs
