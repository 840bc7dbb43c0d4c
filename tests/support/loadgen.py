"""A small HTTP load generator for rolling-update tests and benchmarks.

    python tests/support/loadgen.py URL STATS_FILE [--stop-file PATH] [--max-seconds N] [--interval S]

GETs URL in a loop (one new connection per request, no proxy from the environment) until
STOP_FILE exists or MAX_SECONDS passed, and keeps STATS_FILE (JSON) up to date about once a
second: total requests, failed requests (any error or non-200), answers per body (the app's
/version), the first failures, and when each body was first and last seen. The stats are the
test's evidence, so the file is replaced atomically and never half-written.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def write_stats(path: Path, stats: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(stats, indent=1, sort_keys=True))
    os.replace(temporary, path)


def run(url: str, stats_file: Path, stop_file: Path | None, max_seconds: float, interval: float) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.time()
    stats: dict[str, Any] = {"url": url, "started": started, "total": 0, "failed": 0, "bodies": {},
                             "first_seen": {}, "last_seen": {}, "failures": [], "running": True}
    last_write = 0.0
    while time.time() - started < max_seconds and not (stop_file and stop_file.exists()):
        now = time.time()
        try:
            with opener.open(url, timeout=5) as response:
                body = response.read().decode().strip()
                ok = response.status == 200
        except (urllib.error.URLError, OSError) as exc:
            body, ok = "error: %s" % exc, False
        stats["total"] += 1
        if ok:
            stats["bodies"][body] = stats["bodies"].get(body, 0) + 1
            stats["first_seen"].setdefault(body, now)
            stats["last_seen"][body] = now
        else:
            stats["failed"] += 1
            if len(stats["failures"]) < 20:
                stats["failures"].append({"time": now, "error": body})
        if now - last_write >= 1:
            write_stats(stats_file, stats)
            last_write = now
        time.sleep(interval)
    stats["running"] = False
    stats["stopped"] = time.time()
    write_stats(stats_file, stats)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("stats_file", type=Path)
    parser.add_argument("--stop-file", type=Path)
    parser.add_argument("--max-seconds", type=float, default=900)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    run(args.url, args.stats_file, args.stop_file, args.max_seconds, args.interval)


if __name__ == "__main__":
    main()
