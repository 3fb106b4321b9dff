"""The delivery side of the write benchmarks, as in production: a Redis of the bench's own
(a spare port, no persistence), the relay (`manage.py relay_deliveries`) and a Celery
worker with the database email sink, so every adjustment's email really goes through the
broker while the ledger is timed; and the latency from commit to email sent."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(path: Path, marker: str, process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while marker not in path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} did not start:\n{path.read_text()[-2000:]}")
        time.sleep(0.1)


@contextmanager
def broker_relay_and_worker(database_url: str, log_dir: Path):
    """Yields the broker's URL; Redis, the relay and the worker run inside the block."""
    port = _free_port()
    redis = subprocess.Popen(  # noqa: S603
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],  # noqa: S607
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": url,
        "EMAIL_BACKEND": "notifications.backends.DatabaseEmailBackend",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    processes = []
    try:
        relay_log, worker_log = log_dir / "bench-relay.log", log_dir / "bench-worker.log"
        relay = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "relay_deliveries"],
            cwd=ROOT,
            env=env,
            stdout=relay_log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(relay)
        worker = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "celery", "-A", "spacecredits", "worker", "--loglevel=INFO"]
            + ["--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT,
            env=env,
            stdout=worker_log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append(worker)
        _wait_for(relay_log, "Relaying deliveries", relay)
        _wait_for(worker_log, " ready.", worker)
        yield url
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        redis.terminate()
        redis.wait(10)


@dataclass
class Latency:
    emails: int
    missing: int
    p50_ms: float
    p95_ms: float


def latency(after_pk: int, timeout: float = 60) -> Latency:
    """Wait for every email of the notifications after `after_pk`, then the milliseconds
    from each one's commit (its created_at, the adjustment's time) to its email."""
    from notifications.models import CapturedEmail, EmailStatus, Notification
    from notifications.services import email_message_id

    rows = Notification.objects.filter(pk__gt=after_pk)
    deadline = time.monotonic() + timeout
    while rows.filter(email_status=EmailStatus.PENDING).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    created = {email_message_id(pk): at for pk, at in rows.values_list("pk", "created_at")}
    values = sorted(
        (sent - created[mid]).total_seconds() * 1000
        for mid, sent in CapturedEmail.objects.values_list("message_id", "created_at")
        if mid in created
    )
    if len(values) < 2:
        return Latency(len(values), len(created) - len(values), float("nan"), float("nan"))
    quantiles = statistics.quantiles(values, n=20)
    return Latency(
        len(values), len(created) - len(values), statistics.median(values), quantiles[18]
    )
