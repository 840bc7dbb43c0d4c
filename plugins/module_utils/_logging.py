# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logging drivers: the options of those we know well (checked before anything changes), and the rotating default.

Every other driver (the Engine's other built-ins such as awslogs or splunk, and log-driver plugins) is
passed to the Engine as given: the Engine validates it when the replacement container is created,
before the running one is touched.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

# The Engine reads sizes with go-units' RAMInBytes: 10m, 10M, 10mb, 10MiB, 1.5g, "10 k" (binary multiples).
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BOOL = ("true", "false")
_COMMON_META = ("tag", "labels", "labels-regex", "env", "env-regex")
# Options the daemon accepts for every driver (delivery mode, ring buffer).
_DELIVERY = ("mode", "max-buffer-size")

DRIVER_OPTIONS: dict[str, tuple[str, ...]] = {
    "json-file": ("max-size", "max-file", "compress") + _COMMON_META,
    "local": ("max-size", "max-file", "compress"),
    "syslog": ("syslog-address", "syslog-facility", "syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key",
               "syslog-tls-skip-verify", "syslog-format") + _COMMON_META,
    "journald": _COMMON_META,
    "gelf": ("gelf-address", "gelf-compression-type", "gelf-compression-level", "gelf-tcp-max-reconnect",
             "gelf-tcp-reconnect-delay") + _COMMON_META,
    "fluentd": ("fluentd-address", "fluentd-async", "fluentd-async-connect", "fluentd-buffer-limit",
                "fluentd-retry-wait", "fluentd-max-retries", "fluentd-sub-second-precision",
                "fluentd-request-ack") + _COMMON_META,
    "none": (),
}
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {"gelf": ("gelf-address",)}
# Applied when the user picks json-file (the default driver) without saying how to rotate:
# nobody should get an unbounded log file by accident.
JSON_FILE_ROTATION = {"max-size": "10m", "max-file": "3"}
DEFAULT_DRIVER = "json-file"


def _check_size(value: str) -> Optional[str]:
    match = _SIZE.match(value)
    return None if match and float(match.group(1)) > 0 else "a positive size such as 10m, 10M, 512k or 1g"


def _check_positive_int(value: str) -> Optional[str]:
    return None if value.isdigit() and int(value) > 0 else "a positive whole number"


def _check_bool(value: str) -> Optional[str]:
    return None if value in _BOOL else "true or false"


def _check_choice(*choices: str) -> Callable[[str], Optional[str]]:
    def check(value: str) -> Optional[str]:
        return None if value in choices else "one of " + ", ".join(choices)
    return check


def _check_url(*schemes: str) -> Callable[[str], Optional[str]]:
    def check(value: str) -> Optional[str]:
        return None if value.split("://", 1)[0] in schemes and "://" in value else \
            "a URL starting with " + " or ".join(s + "://" for s in schemes)
    return check


VALUE_CHECKS: dict[str, Callable[[str], Optional[str]]] = {
    "max-size": _check_size,
    "max-file": _check_positive_int,
    "compress": _check_bool,
    "mode": _check_choice("blocking", "non-blocking"),
    "max-buffer-size": _check_size,
    "syslog-address": _check_url("udp", "tcp", "tcp+tls", "unix", "unixgram"),
    "syslog-tls-skip-verify": _check_bool,
    "syslog-format": _check_choice("rfc5424", "rfc5424micro", "rfc3164"),
    "gelf-address": _check_url("udp", "tcp"),
    "gelf-compression-type": _check_choice("gzip", "zlib", "none"),
    "fluentd-address": _check_url("tcp", "unix"),
    "fluentd-async": _check_bool,
    "fluentd-async-connect": _check_bool,
    "fluentd-sub-second-precision": _check_bool,
    "fluentd-request-ack": _check_bool,
}


def normalise_log_config(driver: Optional[str], options: Optional[dict[str, object]]) -> tuple[str, dict[str, str], list[str]]:
    """Return (driver, options as strings, problems); fill in json-file rotation when unset."""
    driver = driver or DEFAULT_DRIVER
    given = {str(k): _as_option_text(v) for k, v in (options or {}).items()}
    if driver not in DRIVER_OPTIONS:
        return driver, given, []
    problems = []
    allowed = DRIVER_OPTIONS[driver] + (_DELIVERY if driver != "none" else ())
    for key in sorted(given):
        if key not in allowed:
            problems.append("log_options.%s is not an option of log_driver %s; valid options: %s"
                            % (key, driver, ", ".join(allowed) or "none"))
            continue
        check = VALUE_CHECKS.get(key)
        expected = check(given[key]) if check else None
        if expected:
            problems.append("log_options.%s=%r is invalid for log_driver %s: expected %s"
                            % (key, given[key], driver, expected))
    for key in REQUIRED_OPTIONS.get(driver, ()):
        if key not in given:
            problems.append("log_driver %s needs log_options.%s" % (driver, key))
    if "max-buffer-size" in given and given.get("mode") != "non-blocking":
        problems.append("log_options.max-buffer-size only applies with log_options.mode=non-blocking")
    if driver == "json-file":
        if "max-size" not in given:
            given.update({k: v for k, v in JSON_FILE_ROTATION.items() if k not in given})
    if driver in ("json-file", "local") and "max-file" in given and "max-size" not in given:
        problems.append("log_options.max-file needs log_options.max-size with log_driver %s" % driver)
    return driver, given, problems


def _as_option_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
