# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The connection options of every module of the docker action group, for modules that talk to a Docker Engine.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker Engine to talk to, as C(unix:///path/to/socket) or C(tcp://host:port).
      - If not given, the value of the E(DOCKER_HOST) environment variable is used, then C(unix:///var/run/docker.sock).
      - Set it for every module of this collection at once with
        C(module_defaults) and the C(group/dockhand.containers.docker) action group.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Talk to the engine over TLS without verifying its certificate. Prefer O(validate_certs).
      - If not given, the value of E(DOCKER_TLS) is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Talk to the engine over TLS and verify its certificate against O(ca_path).
      - If not given, the value of E(DOCKER_TLS_VERIFY) is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the engine's certificate.
      - Defaults to C(ca.pem) in E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate presented to the engine. Needs O(client_key).
      - Defaults to C(cert.pem) in E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Key of O(client_cert).
      - Defaults to C(key.pem) in E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [tls_client_key, key_path]
  timeout:
    description:
      - Seconds to wait for one Engine API call.
      - If not given, the value of E(DOCKER_TIMEOUT) is used.
    type: int
    default: 60
attributes:
  action_group:
    description: Use C(group/dockhand.containers.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - dockhand.containers.docker
requirements:
  - Docker SDK for Python >= 5.0.3 on the host that runs the module (Debian's and Ubuntu's C(python3-docker), or
    C(pip install docker)).
"""

    # The same options for a member of the action group that needs no Engine (image_digest): it accepts them so that
    # group defaults apply. Kept equal to DOCUMENTATION without its requirements by tests/unit/plugins/doc_fragments/test_connection.py.
    WITHOUT_ENGINE = r"""
options:
  docker_host:
    description:
      - The Docker Engine to talk to, as C(unix:///path/to/socket) or C(tcp://host:port).
      - If not given, the value of the E(DOCKER_HOST) environment variable is used, then C(unix:///var/run/docker.sock).
      - Set it for every module of this collection at once with
        C(module_defaults) and the C(group/dockhand.containers.docker) action group.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  tls:
    description:
      - Talk to the engine over TLS without verifying its certificate. Prefer O(validate_certs).
      - If not given, the value of E(DOCKER_TLS) is used.
    type: bool
    default: false
  validate_certs:
    description:
      - Talk to the engine over TLS and verify its certificate against O(ca_path).
      - If not given, the value of E(DOCKER_TLS_VERIFY) is used.
    type: bool
    default: false
    aliases: [tls_verify]
  ca_path:
    description:
      - CA certificate that signed the engine's certificate.
      - Defaults to C(ca.pem) in E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [ca_cert, tls_ca_cert]
  client_cert:
    description:
      - Client certificate presented to the engine. Needs O(client_key).
      - Defaults to C(cert.pem) in E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [tls_client_cert, cert_path]
  client_key:
    description:
      - Key of O(client_cert).
      - Defaults to C(key.pem) in E(DOCKER_CERT_PATH) when that is set.
    type: path
    aliases: [tls_client_key, key_path]
  timeout:
    description:
      - Seconds to wait for one Engine API call.
      - If not given, the value of E(DOCKER_TIMEOUT) is used.
    type: int
    default: 60
attributes:
  action_group:
    description: Use C(group/dockhand.containers.docker) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - dockhand.containers.docker
"""
