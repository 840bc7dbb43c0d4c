# Copyright: (c) 2026, dockhand.containers contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The smoke check of a rolling deploy: an HTTP GET that must answer with the expected status, retried.

Run on the host that was just converged (the URL is as the host sees it, e.g. ``http://127.0.0.1:8080/health``),
in the same module run as the converge, so it costs no round trip of its own.
"""

from __future__ import annotations

import time
import urllib.error
from dataclasses import dataclass
from typing import Callable, Optional

from ansible.module_utils.urls import open_url


class SmokeError(Exception):
    """The URL never answered as expected; the message says what it answered last."""


@dataclass(frozen=True)
class Smoke:
    url: str
    status: int = 200
    retries: int = 5
    delay: float = 2.0
    timeout: float = 10.0

    def problems(self) -> list[str]:
        found = []
        if not self.url.startswith(("http://", "https://")):
            found.append("smoke_url must be an http:// or https:// URL (got %r)" % self.url)
        if not 100 <= self.status <= 599:
            found.append("smoke_status must be an HTTP status, 100-599 (got %d)" % self.status)
        if self.retries < 0:
            found.append("smoke_retries must be 0 or more (got %d)" % self.retries)
        if self.delay < 0 or self.timeout <= 0:
            found.append("smoke_delay must be >= 0 and smoke_timeout > 0 seconds")
        return found


def _answer(url: str, timeout: float) -> tuple[Optional[int], str]:
    """The status the URL answers with (None and why when nothing answered)."""
    try:
        with open_url(url, method="GET", timeout=timeout, http_agent="dockhand.containers smoke check",
                      follow_redirects="safe") as response:
            return int(response.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, str(getattr(exc, "reason", exc))


def check(smoke: Smoke, sleep: Callable[[float], None] = time.sleep) -> dict[str, object]:
    """GET the URL until it answers ``status``, at most ``1 + retries`` times, ``delay`` seconds apart."""
    last = ""
    for attempt in range(1, smoke.retries + 2):
        status, why = _answer(smoke.url, smoke.timeout)
        if status == smoke.status:
            return dict(url=smoke.url, status=status, attempts=attempt)
        last = "answered HTTP %d" % status if status is not None else "did not answer (%s)" % why
        if attempt <= smoke.retries:
            sleep(smoke.delay)
    raise SmokeError("smoke check %s %s, expected HTTP %d (%d attempts, %gs apart)"
                     % (smoke.url, last, smoke.status, smoke.retries + 1, smoke.delay))
