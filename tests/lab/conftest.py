"""pytest settings for the lab's own tests (tests/lab/test_lifecycle.py)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs the lab (tests/lab/lab.py up): its nodes, registry or haproxy")
