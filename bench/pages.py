"""Page throughput: gunicorn serves the app, wrk (a separate process) loads one page at a
time; every page is compared with a trivial view of the same app in the same run."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import config

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class PageResult:
    label: str
    path: str
    per_second: float
    p50_ms: float
    p99_ms: float
    bad_responses: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def wrk(url: str, cookie: str, seconds: float) -> tuple[float, float, float, int]:
    out = subprocess.run(
        [
            "wrk",
            "--latency",
            f"-t{config.WRK_THREADS}",
            f"-c{config.WRK_CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "-H",
            f"Cookie: {cookie}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p99 = (
        _ms(found.group(1))
        if (found := re.search(rf"^\s*{p}%\s+([\d.]+(?:us|ms|s|m))", out, re.M))
        else float("nan")
        for p in (50, 99)
    )
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return per_second, p50, p99, failures


def _check(url: str, cookie: str) -> None:
    """A page must answer 200 itself (wrk would count a redirect to the login page)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200 or response.url != url:
            raise RuntimeError(f"{url} answered {response.status} at {response.url}")


def run(database_url: str, cookie: str, ids: dict) -> list[PageResult]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
        "PYTHONWARNINGS": "ignore",  # whitenoise: no collected static files (none are loaded)
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "spacecredits.wsgi",
            "--workers",
            str(config.GUNICORN_WORKERS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _check(base + config.TRIVIAL_PAGE[1], cookie)
                break
            except OSError:
                time.sleep(0.2)
        results = []
        for label, path in [config.TRIVIAL_PAGE, *config.PAGES]:
            url = base + path.format(**ids)
            _check(url, cookie)
            wrk(url, cookie, 1)  # warm every worker
            per_second, p50, p99, bad = wrk(url, cookie, config.PAGE_SECONDS)
            results.append(PageResult(label, path, per_second, p50, p99, bad))
        return results
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
