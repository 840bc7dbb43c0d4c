from __future__ import annotations

from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.dockhand.containers.plugins.module_utils._container_config import desired_fields, engine_args
from ansible_collections.dockhand.containers.plugins.module_utils._service_spec import (
    Port, ServiceSpec, SpecError, duplicate_host_ports, parse_duration, ports_clash, service_options,
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
    assert desired_fields(spec)["log_config"] == {"driver": "json-file", "options": {"max-file": "3", "max-size": "10m"}}


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
    (dict(ports=["99999:80"]), "must be within 1-65535"),
    (dict(ports=["80:80/icmp"]), "protocol must be tcp, udp or sctp"),
    (dict(labels={"dockhand.spec": "x"}), "reserved prefix"),
    (dict(env={"A": "1"}, secret_env={"A": "2"}), "env and secret_env both set A"),
    (dict(memory="1k"), "below the Engine's minimum"),
    (dict(memory="64m", memory_reservation="128m"), "memory_reservation must not be more than memory"),
    (dict(memory_reservation="lots"), "memory_reservation 'lots' is not a size"),
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
    fields = desired_fields(spec)
    assert [Port.from_field(p).describe() for p in fields["ports"]] == [
        "8080->80/tcp", "127.0.0.1:9090->90/udp", "8443->443/tcp", "(any)->7000/tcp"]
    assert {v["target"]: v["type"] for v in fields["volumes"]} == {"/data": "volume", "/conf": "bind", "/tmp": "tmpfs"}
    assert [v["read_only"] for v in fields["volumes"] if v["target"] == "/conf"] == [True]


def test_secret_values_never_appear_in_fields_but_changes_do() -> None:
    one = desired_fields(ServiceSpec.from_params(params(secret_env={"TOKEN": "s3cret"})))
    two = desired_fields(ServiceSpec.from_params(params(secret_env={"TOKEN": "other"})))
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
    args = engine_args(desired_fields(spec), dict(spec.env, **spec.secret_env), {"l": "v"})
    assert args["host"]["port_bindings"] == {"8080/tcp": [("127.0.0.1", 18080)], "9000/tcp": [None]}
    assert sorted(args["config"]["ports"]) == [8080, 9000]
    assert args["host"]["mounts"] == [{"Type": "volume", "Target": "/data", "ReadOnly": False, "Source": "data"}]
    assert args["host"]["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert args["host"]["log_config"] == {"type": "json-file", "config": {"max-file": "3", "max-size": "10m"}}
    assert args["config"]["environment"] == ["A=1", "B=2"]
    assert args["config"]["healthcheck"] == {"test": ["CMD", "true"], "interval": 2 * 10**9}


def test_only_fixed_host_ports_on_overlapping_addresses_clash() -> None:
    new = ServiceSpec.from_params(params(ports=["8080:80", "9000", "9100-9110:91"])).ports
    old = ServiceSpec.from_params(params(ports=["127.0.0.1:8080:80", "9000:9000", "9100:91"])).ports
    assert sorted({n.host_side() for n in new for o in old if ports_clash(n, o)}) == ["8080/tcp"]
    other = ServiceSpec.from_params(params(ports=["8081:80", "8080:80/udp", "127.0.0.2:8080:80"])).ports
    assert not any(ports_clash(o, n) for o in other for n in old)


@pytest.mark.parametrize("ports, clash", [
    (["8080:80", "8080:81"], "item '8080:80' and item '8080:81' both publish host port 8080/tcp"),
    (["8080:80", "127.0.0.1:8080:81"], "host port 8080/tcp"),
    (["8000-8002:8000-8002", "8001:9000"], "item '8000-8002:8000-8002' and item '8001:9000'"),
    (["[::1]:8080:80", "[::1]:8080:81"], "host port [::1]:8080/tcp"),
])
def test_duplicate_host_ports_in_one_service_name_both_items(ports: list[str], clash: str) -> None:
    assert any(clash in p for p in problems_of(ports=ports)), problems_of(ports=ports)


@pytest.mark.parametrize("ports", [
    ["8080:80", "8080:80/udp"], ["127.0.0.1:8080:80", "127.0.0.2:8080:81"], ["9001", "9001"],
    ["127.0.0.1::80", "127.0.0.1::81"], ["9000-9010:90", "9000-9010:91"], ["8080:80", "8081:80"],
])
def test_ports_that_do_not_clash_are_accepted(ports: list[str]) -> None:
    ServiceSpec.from_params(params(ports=ports))


def test_duplicates_between_services_name_both_services() -> None:
    one = ServiceSpec.from_params(params(name="a", ports=["8080:80"])).ports
    two = ServiceSpec.from_params(params(name="b", ports=["0.0.0.0:8080:8080"])).ports
    assert duplicate_host_ports([("service a", one), ("service b", two)]) == [
        "ports: service a '8080:80' and service b '0.0.0.0:8080:8080' both publish host port 8080/tcp; give each its "
        "own host port, or leave the host port out to let the Engine pick one"]


@pytest.mark.parametrize("given, published", [
    ("9001", [(9001, "tcp", None, None, "")]),
    ("127.0.0.1::80", [(80, "tcp", None, None, "127.0.0.1")]),
    ("[::1]:8080:80/udp", [(80, "udp", 8080, None, "::1")]),
    ("8000-8001:9000-9001/sctp", [(9000, "sctp", 8000, None, ""), (9001, "sctp", 8001, None, "")]),
    ("8000-8010:80", [(80, "tcp", 8000, 8010, "")]),
    ({"target": 80, "published": 8080, "host_ip": "::1", "protocol": "udp"}, [(80, "udp", 8080, None, "::1")]),
])
def test_ports_as_docker_run_takes_them(given: Any, published: list[tuple[Any, ...]]) -> None:
    spec = ServiceSpec.from_params(params(ports=[given]))
    assert [(p.target, p.protocol, p.published, p.published_end, p.host_ip) for p in spec.ports] == published


def test_mount_options_selinux_propagation_tmpfs_mode() -> None:
    spec = ServiceSpec.from_params(params(volumes=[
        "data:/data:ro,z", "/srv:/srv:rslave,Z", {"type": "tmpfs", "target": "/t", "tmpfs_mode": "1770"}]))
    args = engine_args(desired_fields(spec), {}, {})
    assert args["host"]["binds"] == ["data:/data:ro,z", "/srv:/srv:rw,Z,rslave"]
    assert args["host"]["mounts"] == [{"Type": "tmpfs", "Target": "/t", "ReadOnly": False,
                                       "TmpfsOptions": {"Mode": 0o1770}}]


@pytest.mark.parametrize("given, message", [
    (dict(env={"DEBUG": True}), "env.DEBUG is the boolean true, not text"),
    (dict(env={"VERSION": 1.1}), "env.VERSION is the number 1.1, not text"),
    (dict(labels={"release": False}), "labels.release is the boolean false"),
    (dict(volumes=["data:/data:rx"]), "unknown option 'rx'"),
    (dict(volumes=["data:/data:rslave"]), "propagation 'rslave' (/data) needs a bind mount"),
    (dict(volumes=[{"type": "tmpfs", "target": "/t", "tmpfs_mode": "999"}]), "tmpfs_mode '999' is not an octal"),
    (dict(ports=["8000-8002:80-81"]), "is not [host_ip:]"),
])
def test_docker_style_values_that_docker_refuses_or_yaml_mangled(given: dict[str, Any], message: str) -> None:
    assert any(message in p for p in problems_of(**given)), problems_of(**given)


def test_whole_numbers_in_env_and_labels_are_fine() -> None:
    spec = ServiceSpec.from_params(params(env={"PORT": 8080}, labels={"tier": 2}))
    assert spec.env == {"PORT": "8080"} and spec.labels == {"tier": "2"}
