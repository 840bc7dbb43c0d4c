from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from ansible_collections.dockhand.containers.plugins.module_utils._smoke import Smoke, SmokeError, check


class _Handler(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        code = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on loopback that answers the statuses queued in _Handler.answers, one per request."""
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/health" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_the_url_is_tried_until_it_answers_the_status(server: str) -> None:
    _Handler.answers = [503, 503, 200]
    slept: list[float] = []
    assert check(Smoke(server, retries=5, delay=0.5), sleep=slept.append) == dict(url=server, status=200, attempts=3)
    assert slept == [0.5, 0.5]


def test_a_url_that_never_answers_as_expected_names_what_it_answered(server: str) -> None:
    _Handler.answers = [404]
    with pytest.raises(SmokeError, match=r"health answered HTTP 404, expected HTTP 200 \(3 attempts, 0s apart\)"):
        check(Smoke(server, retries=2, delay=0), sleep=lambda _s: None)


def test_nothing_listening_is_reported_as_no_answer() -> None:
    with pytest.raises(SmokeError, match=r"did not answer \(.*refused.*\), expected HTTP 200 \(1 attempts"):
        check(Smoke("http://127.0.0.1:9/x", retries=0, timeout=2))


@pytest.mark.parametrize("smoke,problem", [
    (Smoke("127.0.0.1:8080/health"), "must be an http:// or https:// URL"),
    (Smoke("http://h/", status=42), "must be an HTTP status"),
    (Smoke("http://h/", retries=-1), "smoke_retries must be 0 or more"),
    (Smoke("http://h/", delay=-1), "smoke_delay must be >= 0"),
])
def test_bad_settings_are_named(smoke: Smoke, problem: str) -> None:
    assert any(problem in p for p in smoke.problems())
