from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils import _volume as V
from ansible_collections.dockhand.containers.plugins.module_utils._volume import VolumeError, VolumeSpec, volume_stats


def params(**kwargs: object) -> dict[str, object]:
    return dict(dict(name="vo-data", driver="local", driver_options={}, labels={}), **kwargs)


def test_defaults_to_the_local_driver_with_string_options_and_labels() -> None:
    spec = VolumeSpec.from_params(params(driver=None, driver_options={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
                                         labels={"backup": True, "tier": 1}))
    assert spec.driver == "local"
    assert spec.labels == {"backup": "true", "tier": "1"}
    assert spec.driver_options["o"] == "size=1m"


@pytest.mark.parametrize("bad, fix", [
    (dict(name="x"), "at least 2 characters"),
    (dict(name="-x"), "starting with a letter or digit"),
    (dict(driver=" "), "driver must not be empty"),
    (dict(driver_options={"size2": "1"}), "size2 are not options of the local driver"),
    (dict(driver_options={"device": "/srv"}), "need a type"),
    (dict(driver_options={"type": "none", "device": "/srv"}), "only with o: bind"),
    (dict(driver_options={"type": "none", "o": "bind", "device": "srv"}), "absolute directory"),
    (dict(driver_options={"type": "nfs", "o": "nolock", "device": ":/export"}), "addr=<server>"),
    (dict(driver_options={"type": "nfs", "o": "addr=10.0.0.1", "device": "/export"}), "':/exported/path'"),
    (dict(driver_options={"type": "cifs", "device": "server/share"}), "//server/share"),
    (dict(driver_options={"type": "ext4"}), "needs device"),
])
def test_bad_input_names_the_field_and_the_fix(bad: dict[str, object], fix: str) -> None:
    with pytest.raises(VolumeError, match=fix):
        VolumeSpec.from_params(params(**bad))


def test_plugin_options_are_passed_through_unchecked() -> None:
    spec = VolumeSpec.from_params(params(driver="dockhand-lab", driver_options={"anything": "goes"}))
    assert spec.driver_options == {"anything": "goes"}


def test_differences_list_only_settings_fixed_at_creation() -> None:
    spec = VolumeSpec(name="vo-data", driver="local", driver_options={"type": "tmpfs", "device": "tmpfs"},
                      labels={"a": "1"})
    same = {"Driver": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}, "Labels": {"a": "1"},
            "Mountpoint": "/x", "CreatedAt": "now"}
    assert spec.differences(same) == []
    assert spec.differences(dict(same, Labels=None)) == ["labels {} -> {'a': '1'}"]
    assert spec.differences(dict(same, Labels=None), labels=False) == []
    assert spec.differences(dict(same, Driver="other", Options=None)) == [
        "driver other -> local", "driver_options {} -> {'type': 'tmpfs', 'device': 'tmpfs'}"]


def test_volume_stats_counts_files_and_links_without_following_them(tmp_path: Path) -> None:
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "dir" / "b").write_bytes(b"y" * 5)
    (tmp_path / "empty").mkdir()
    os.symlink("/etc", tmp_path / "link-to-dir")
    os.symlink("a", tmp_path / "link-to-file")
    assert volume_stats(str(tmp_path)) == (15, 4)


def test_settings_a_task_leaves_out_are_not_compared_and_are_kept_for_a_recreation() -> None:
    current = {"Name": "vo-data", "Driver": "dockhand-lab", "Options": {"size": "1g"}, "Labels": {"team": "a"}}
    only_name = VolumeSpec.from_params({"name": "vo-data"})
    assert only_name.differences(current) == []
    assert only_name.driver == "local"  # what a creation would use
    new_labels = VolumeSpec.from_params({"name": "vo-data", "labels": {"team": "b"}})
    assert new_labels.differences(current) == ["labels {'team': 'a'} -> {'team': 'b'}"]
    recreated = new_labels.completed_from(current)
    assert (recreated.driver, recreated.driver_options, recreated.labels) == ("dockhand-lab", {"size": "1g"},
                                                                              {"team": "b"})
    other_driver = VolumeSpec.from_params({"name": "vo-data", "driver": "local"}).completed_from(current)
    assert (other_driver.driver, other_driver.driver_options, other_driver.labels) == ("local", {}, {"team": "a"})


def test_a_managed_plugin_is_the_same_driver_with_or_without_its_latest_tag() -> None:
    assert V.same_driver("rexray/ebs", "rexray/ebs:latest")
    assert V.same_driver("dockhand-lab-host:latest", "dockhand-lab-host")
    assert V.same_driver(None, "local") and V.same_driver("local", "local")
    assert not V.same_driver("rexray/ebs:0.11", "rexray/ebs:latest")
    assert not V.same_driver("registry.example.com:5000/team/driver", "registry.example.com:5000/team/other")
    assert V.same_driver("registry.example.com:5000/team/driver", "registry.example.com:5000/team/driver:latest")
    spec = V.VolumeSpec.from_params(dict(name="data", driver="rexray/ebs", driver_options={"size": "10"}))
    assert spec.differences({"Driver": "rexray/ebs:latest", "Options": {"size": "10"}}) == []
    assert spec.differences({"Driver": "local", "Options": {"size": "10"}}) == ["driver local -> rexray/ebs"]
