from __future__ import annotations

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._logging import normalise_log_config


def test_default_driver_is_json_file_with_rotation() -> None:
    assert normalise_log_config(None, None) == ("json-file", {"max-size": "10m", "max-file": "3"}, [])


def test_explicit_max_size_is_kept_and_no_max_file_is_added() -> None:
    driver, options, problems = normalise_log_config("json-file", {"max-size": "50m"})
    assert (options, problems) == ({"max-size": "50m"}, [])


def test_local_driver_rotates_by_itself_so_nothing_is_added() -> None:
    assert normalise_log_config("local", {}) == ("local", {}, [])


def test_booleans_and_numbers_become_docker_option_text() -> None:
    given = {"fluentd-address": "tcp://127.0.0.1:24224", "fluentd-async": True, "mode": "non-blocking",
             "max-buffer-size": "4m"}
    options, problems = normalise_log_config("fluentd", given)[1:]
    assert problems == []
    assert options["fluentd-async"] == "true"


@pytest.mark.parametrize("driver, options, message", [
    ("journald", {"max-size": "10m"}, "log_options.max-size is not an option of log_driver journald"),
    ("json-file", {"max-size": "ten"}, "log_options.max-size='ten' is invalid"),
    ("json-file", {"max-size": "10m", "max-file": "0"}, "expected a positive whole number"),
    ("json-file", {"max-size": "0"}, "expected a positive size"),
    ("json-file", {"max-size": "10q"}, "expected a positive size"),
    ("gelf", {}, "log_driver gelf needs log_options.gelf-address"),
    ("gelf", {"gelf-address": "http://x:1"}, "expected a URL starting with udp:// or tcp://"),
    ("syslog", {"max-buffer-size": "1m"}, "max-buffer-size only applies with log_options.mode=non-blocking"),
    ("local", {"max-file": "3"}, "max-file needs log_options.max-size"),
    ("none", {"tag": "x"}, "is not an option of log_driver none"),
    ("fluentd", {"fluentd-async": "yes"}, "expected true or false"),
])
def test_invalid_log_settings_name_the_option_and_the_fix(driver: str, options: dict, message: str) -> None:
    problems = normalise_log_config(driver, options)[2]
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("size", ["10m", "10M", "10k", "10K", "1g", "10mb", "10MiB", "1.5g", "10 m", "1024"])
def test_sizes_are_read_as_the_engine_reads_them(size: str) -> None:
    assert normalise_log_config("json-file", {"max-size": size}) == ("json-file", {"max-size": size}, [])


@pytest.mark.parametrize("driver", ["awslogs", "splunk", "gcplogs", "logentries", "etwlogs", "vendor/some-plugin:1.0"])
def test_other_builtin_drivers_and_plugins_are_left_to_the_engine(driver: str) -> None:
    assert normalise_log_config(driver, {"anything": "goes"}) == (driver, {"anything": "goes"}, [])
