"""Scenarios: every service option lands on the engine as declared and a full spec is idempotent; every kind of
volume; an existing volume is never recreated; an unmanaged container is only replaced with adopt; check mode
predicts exactly what the real run then does; a wait that times out says why.

The module runs on this machine against lab node3's engine (docker_host); assertions look at that engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker.errors
import pytest
from conftest import LabState, Node
from module_runner import Service, exec_text, fingerprint, served_version

pytestmark = pytest.mark.lab
NODE_INDEX = 2  # the lab node this module works on (see the node fixture)


def _remove_networks(engine: Any, prefix: str) -> None:
    for network in engine.networks.list():
        if network.name.startswith(prefix):
            network.remove()


@pytest.fixture
def service(lab: LabState, node: Node, engine: Any, request: pytest.FixtureRequest) -> Iterator[Service]:
    name = "so-" + request.node.originalname.removeprefix("test_").split("_")[0]
    made = Service(name, node.docker_host, engine, image=lab.images["v1"].pinned, volumes=[f"{name}-data:/data"],
                   registry_username=lab.registry_username, registry_password=lab.registry_password)
    made.cleanup()
    _remove_networks(engine, name)
    yield made
    made.cleanup()
    _remove_networks(engine, name)


def test_full_spec_maps_every_option_to_the_engine_and_a_second_run_changes_nothing(service: Service) -> None:
    name = service.name
    spec: dict[str, Any] = dict(
        entrypoint=["/bin/sh", "-c"],
        command=["trap 'exit 0' TERM; echo started as $(id -u); httpd -f -p 8080 -h /www & wait"],
        env={"MODE": "full", "DEBUG": "true", "WORKERS": 4},
        secret_env={"TOKEN": "full-spec-token"},
        ports=["127.0.0.1:18600:8080", "18601:8081/udp", 9000],
        networks=[f"{name}-net"],
        labels={"team": "shop"},
        user="1000:1000",
        memory="64m",
        cpus=0.5,
        healthcheck={"test": "wget -q -O /dev/null http://127.0.0.1:8080/health", "interval": "1s",
                     "timeout": "1s", "retries": 3, "start_period": "1s"},
        stop_timeout=3,
        restart_policy="unless-stopped",
        log_driver="local",
        log_options={"max-size": "5m", "max-file": 2, "compress": False, "mode": "non-blocking",
                     "max-buffer-size": "1m"},
    )
    first = service.run(**spec).assert_ok()
    assert first["actions"] == ["create"] and first["health"] == "healthy", first.describe()
    container = service.container()
    config, host = container.attrs["Config"], container.attrs["HostConfig"]
    assert config["Entrypoint"] == ["/bin/sh", "-c"] and config["Cmd"] == spec["command"]
    assert {"MODE=full", "DEBUG=true", "WORKERS=4", "TOKEN=full-spec-token"} <= set(config["Env"])
    assert host["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18600"}],
                                    "8081/udp": [{"HostIp": "", "HostPort": "18601"}],
                                    "9000/tcp": [{"HostIp": "", "HostPort": ""}]}  # the Engine picks the host port
    assert {"8080/tcp", "8081/udp", "9000/tcp"} <= set(config["ExposedPorts"])
    assert config["Labels"]["team"] == "shop"
    assert config["User"] == "1000:1000"
    assert host["Memory"] == 64 * 1024 * 1024 and host["NanoCpus"] == 500_000_000
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/health"],
                                     "Interval": 10**9, "Timeout": 10**9, "Retries": 3, "StartPeriod": 10**9}
    assert config["StopTimeout"] == 3
    assert host["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert host["LogConfig"] == {"Type": "local", "Config": {"max-size": "5m", "max-file": "2", "compress": "false",
                                                             "mode": "non-blocking", "max-buffer-size": "1m"}}
    network = service.client.networks.get(f"{name}-net")
    assert network.attrs["Labels"].get("dockhand.managed") == "true"
    assert name in container.attrs["NetworkSettings"]["Networks"][f"{name}-net"]["Aliases"]
    assert "started as 1000" in container.logs().decode()
    assert served_version(container) == "v1"

    before = fingerprint(container)
    second = service.run(diff=True, **spec).assert_ok()
    assert second.changed is False, second.describe()
    assert fingerprint(service.container()) == before

    # Values given as other types that mean the same thing are the same spec.
    same = dict(spec, env={"MODE": "full", "DEBUG": "true", "WORKERS": "4"}, memory="64M", cpus=0.50,
                log_options=dict(spec["log_options"], **{"max-file": "2", "compress": "false"}))
    assert service.run(**same).assert_ok().changed is False


def test_volumes_named_with_driver_options_bind_read_only_and_tmpfs(service: Service) -> None:
    name = service.name
    volumes = [
        {"source": f"{name}-data", "target": "/data", "driver": "local",
         "driver_options": {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}, "labels": {"purpose": "cache"}},
        {"source": f"{name}-ro", "target": "/ro", "read_only": True},
        "/etc:/host-etc:ro",  # exists on this machine and on the node
        {"type": "tmpfs", "target": "/scratch", "tmpfs_size": "4m"},
    ]
    service.run(volumes=volumes).assert_ok()
    container = service.container()
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["RW"] is True
    assert mounts["/ro"]["Type"] == "volume" and mounts["/ro"]["RW"] is False
    assert mounts["/host-etc"]["Type"] == "bind" and mounts["/host-etc"]["RW"] is False
    assert mounts["/scratch"]["Type"] == "tmpfs"
    declared = {m["Target"]: m for m in container.attrs["HostConfig"]["Mounts"]}
    assert declared["/scratch"]["TmpfsOptions"] == {"SizeBytes": 4 * 1024 * 1024}
    data = service.client.volumes.get(f"{name}-data").attrs
    assert data["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}
    assert data["Labels"] == {"purpose": "cache"}
    assert "tmpfs" in exec_text(container, "grep ' /data ' /proc/mounts")
    assert container.exec_run(["/bin/sh", "-c", "touch /ro/x"]).exit_code != 0  # read-only
    assert service.run(volumes=volumes).assert_ok().changed is False


def _volume_with_options(service: Service, size: str) -> dict[str, Any]:
    return {"source": f"{service.name}-data", "target": "/data",
            "driver_options": {"type": "tmpfs", "device": "tmpfs", "o": f"size={size}"}}


def test_existing_volume_with_other_driver_options_is_refused_on_update_and_never_recreated(
        lab: LabState, service: Service) -> None:
    service.run(volumes=[_volume_with_options(service, "8m")]).assert_ok()
    exec_text(service.container(), "echo precious > /data/marker")
    volume = service.client.volumes.get(f"{service.name}-data")
    before = fingerprint(service.container())
    refused = service.run(image=lab.images["v2"].pinned, volumes=[_volume_with_options(service, "16m")]).assert_failed()
    assert f"volume {service.name}-data exists" in refused.msg and "never recreated" in refused.msg, refused.describe()
    assert "size=16m" in refused.msg and "size=8m" in refused.msg
    assert fingerprint(service.container()) == before
    assert service.client.volumes.get(volume.name).attrs == volume.attrs
    assert exec_text(service.container(), "cat /data/marker").strip() == "precious"


def test_changing_only_the_volume_driver_options_is_refused_not_ignored(service: Service) -> None:
    service.run(volumes=[_volume_with_options(service, "8m")]).assert_ok()
    before = fingerprint(service.container())
    result = service.run(volumes=[_volume_with_options(service, "16m")])
    assert fingerprint(service.container()) == before
    assert result.failed and "never recreated" in result.msg, result.describe()


def test_unmanaged_container_is_refused_unless_adopt_and_its_volume_is_kept(lab: LabState, service: Service) -> None:
    stranger = service.client.containers.run(lab.images["v1"].pinned, name=service.name, detach=True,
                                             volumes={f"{service.name}-data": {"bind": "/data", "mode": "rw"}})
    exec_text(stranger, "echo from-before > /data/marker")
    refused = service.run().assert_failed()
    assert "not managed by dockhand.containers" in refused.msg and "adopt=true" in refused.msg, refused.describe()
    assert service.container().id == stranger.id

    adopted = service.run(adopt=True).assert_ok()
    assert adopted["actions"] == ["recreate"], adopted.describe()
    container = service.container()
    assert container.id != stranger.id
    assert container.attrs["Config"]["Labels"]["dockhand.managed"] == "true"
    assert exec_text(container, "cat /data/marker").strip() == "from-before"
    with pytest.raises(docker.errors.NotFound):
        service.client.containers.get(stranger.id)


def test_check_mode_predicts_exactly_what_the_real_run_does(lab: LabState, service: Service) -> None:
    steps: list[dict[str, Any]] = [
        {},                                            # create
        {},                                            # nothing
        {"restart_policy": "always"},                  # update in place
        {"restart_policy": "always", "image": lab.images["v2"].pinned, "env": {"X": "1"}},  # recreate
        {"restart_policy": "always", "image": lab.images["v2"].pinned, "env": {"X": "1"}, "state": "stopped"},
        {"restart_policy": "always", "image": lab.images["v2"].pinned, "env": {"X": "1"}, "state": "started"},
        {"state": "absent"},
    ]
    for step in steps:
        container = service.maybe_container()
        before = fingerprint(container) if container else None
        predicted = service.run(check=True, diff=True, **step).assert_ok()
        after_check = service.maybe_container()
        assert (fingerprint(after_check) if after_check else None) == before, f"check mode changed the engine: {step}"
        real = service.run(diff=True, **step).assert_ok()
        for key in ("changed", "actions", "changed_fields", "image", "digest", "state", "previous_image", "diff"):
            mismatch = f"{key} for {step}\npredicted {predicted.describe()}\nreal {real.describe()}"
            assert predicted.get(key) == real.get(key), mismatch


def test_wait_healthy_that_times_out_reports_the_health_state_and_logs(service: Service) -> None:
    timed_out = service.run(wait="healthy", wait_timeout=3,
                            entrypoint=["/bin/sh", "-c", "echo slow-service-booting; httpd -f -p 8080 -h /www"],
                            healthcheck={"test": "wget -q -O /dev/null http://127.0.0.1:8080/health",
                                         "interval": "60s", "start_period": "60s"}).assert_failed()
    assert "did not become healthy within 3s" in timed_out.msg, timed_out.describe()
    assert "slow-service-booting" in timed_out.msg


def test_a_first_deploy_that_never_becomes_healthy_is_not_reported_converged_by_the_next_run(
        lab: LabState, service: Service) -> None:
    broken: dict[str, Any] = dict(image=lab.images["broken"].pinned, wait="healthy", wait_timeout=30)
    first = service.run(**broken).assert_failed()
    assert "unhealthy" in first.msg and "404" in first.msg, first.describe()
    second = service.run(**broken)
    left = service.maybe_container()
    assert second.failed or left is None, f"the failed deployment is reported as converged\n{second.describe()}"
