from __future__ import annotations

from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.dockhand.containers.plugins.module_utils._service_spec import (
    ServiceSpec, SpecError, engine_args, parse_duration, service_options,
)

DIGEST = "sha256:" + "cd" * 32
IMAGE = "reg.example.com/app@" + DIGEST


def params(**given: Any) -> dict[str, Any]:
    """Parameters as AnsibleModule would hand them over (defaults filled by Ansible's own validator)."""
    given.setdefault("name", "web")
    given.setdefault("image", IMAGE)
    result = ArgumentSpecValidator(service_options()).validate(given)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def problems_of(**given: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        ServiceSpec.from_params(params(**given))
    return caught.value.problems


def test_defaults_choose_on_failure_with_retries_and_rotating_logs() -> None:
    spec = ServiceSpec.from_params(params())
    assert (spec.restart_policy, spec.restart_retries) == ("on-failure", 5)
    assert spec.fields()["log_config"] == {"driver": "json-file", "options": {"max-file": "3", "max-size": "10m"}}


@pytest.mark.parametrize("given, message", [
    (dict(image="reg.example.com/app:v1"), "is not pinned by digest"),
    (dict(image="reg.example.com/app@sha256:beef"), "malformed digest"),
    (dict(restart_policy="always", restart_retries=3), "restart_retries requires restart_policy=on-failure (got 'always')"),
    (dict(restart_retries=-1), "restart_retries must be 1 or more"),
    (dict(restart_retries=0), "the Engine treats 0 as unlimited restarts; use restart_policy=no"),
    (dict(wait_timeout=-1), "wait_timeout must be a positive number"),
    (dict(stop_timeout=-1), "stop_timeout must be 0 or more"),
    (dict(volumes=["bad name!:/data"]), "volume name 'bad name!' is invalid"),
    (dict(volumes=[{"type": "bind", "source": "relative/dir", "target": "/data"}]), "must be an absolute path on the Docker host"),
    (dict(volumes=["data:relative"]), "must be an absolute path inside the container"),
    (dict(volumes=["aa:/data", "bb:/data"]), "/data is mounted more than once"),
    (dict(volumes=[{"type": "tmpfs", "source": "x", "target": "/t"}]), "a tmpfs mount takes no source"),
    (dict(ports=["99999:80"]), "outside 1-65535"),
    (dict(ports=["80:80/icmp"]), "protocol must be tcp, udp or sctp"),
    (dict(labels={"dockhand.spec": "x"}), "reserved prefix"),
    (dict(env={"A": "1"}, secret_env={"A": "2"}), "env and secret_env both set A"),
    (dict(memory="1k"), "below the Engine's minimum"),
    (dict(log_driver="json-file", log_options={"syslog-address": "udp://x:1"}), "log_options.syslog-address"),
    (dict(healthcheck={"test": "true", "interval": "soon"}), "healthcheck.interval 'soon' is not a duration"),
    (dict(image=None), "image is required unless state=absent or rollback=true"),
    (dict(name="-web"), "name '-web' may only hold"),
])
def test_bad_input_is_refused_with_the_field_and_the_fix(given: dict[str, Any], message: str) -> None:
    problems = problems_of(**given)
    assert any(message in p for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    assert len(problems_of(restart_policy="always", restart_retries=1, wait_timeout=0)) == 2


def test_tag_is_accepted_with_pin() -> None:
    spec = ServiceSpec.from_params(params(image="reg.example.com/app:v1", pin=True))
    assert spec.image is not None and spec.image.tag == "v1"


def test_short_forms_of_ports_and_volumes(tmp_path: Any) -> None:
    spec = ServiceSpec.from_params(params(
        ports=["8080:80", "127.0.0.1:9090:90/udp", 7000, {"target": 443, "published": 8443}],
        volumes=["data:/data", "%s:/conf:ro" % tmp_path, {"type": "tmpfs", "target": "/tmp", "tmpfs_size": "64m"}],
    ))
    fields = spec.fields()
    assert fields["ports"] == sorted(["8080:80/tcp", "127.0.0.1:9090:90/udp", "7000/tcp", "8443:443/tcp"])
    assert {v["target"]: v["type"] for v in fields["volumes"]} == {"/data": "volume", "/conf": "bind", "/tmp": "tmpfs"}
    assert [v["read_only"] for v in fields["volumes"] if v["target"] == "/conf"] == [True]


def test_secret_values_never_appear_in_fields_but_changes_do() -> None:
    one = ServiceSpec.from_params(params(secret_env={"TOKEN": "s3cret"})).fields()
    two = ServiceSpec.from_params(params(secret_env={"TOKEN": "other"})).fields()
    assert "s3cret" not in repr(one)
    assert one["secret_env"] != two["secret_env"]


@pytest.mark.parametrize("value, ns", [(2, 2 * 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("1.5", 15 * 10**8)])
def test_durations(value: Any, ns: int) -> None:
    assert parse_duration(value, "x", []) == ns


def test_engine_args_map_ports_mounts_policy_and_logs() -> None:
    spec = ServiceSpec.from_params(params(
        ports=["127.0.0.1:18080:8080", "9000"], volumes=["data:/data"], env={"A": "1"},
        secret_env={"B": "2"}, healthcheck={"test": ["CMD", "true"], "interval": "2s"},
    ))
    args = engine_args(spec.fields(), dict(spec.env, **spec.secret_env), {"l": "v"})
    assert args["host"]["port_bindings"] == {"8080/tcp": [("127.0.0.1", 18080)]}
    assert sorted(args["config"]["ports"]) == [8080, 9000]
    assert args["host"]["mounts"] == [{"Type": "volume", "Target": "/data", "ReadOnly": False, "Source": "data"}]
    assert args["host"]["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert args["host"]["log_config"] == {"type": "json-file", "config": {"max-file": "3", "max-size": "10m"}}
    assert args["config"]["environment"] == ["A=1", "B=2"]
    assert args["config"]["healthcheck"] == {"test": ["CMD", "true"], "interval": 2 * 10**9}


def test_port_conflicts_only_for_fixed_host_ports() -> None:
    spec = ServiceSpec.from_params(params(ports=["8080:80", "9000"]))
    assert spec.port_conflicts(["8080:80/tcp"]) == ["8080/tcp"]
    assert spec.port_conflicts(["9000/tcp", "8081:80/tcp"]) == []
