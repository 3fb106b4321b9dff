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


class Stack:
    """A Redis of the bench's own, and the relay and the worker, each started and stopped
    on its own, so the writes can be timed with and without them."""

    def __init__(self, database_url: str, log_dir: Path):
        self.log_dir = log_dir
        port = _free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.redis = subprocess.Popen(  # noqa: S603
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],  # noqa: S607
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": self.url,
            "EMAIL_BACKEND": "notifications.backends.DatabaseEmailBackend",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.relay = self.worker = None

    def _start(self, name: str, args: list[str], ready: str):
        log = self.log_dir / f"bench-{name}.log"
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for(log, ready, process)
        return process

    def start_relay(self) -> None:
        if self.relay is None:
            self.relay = self._start(
                "relay", ["manage.py", "relay_deliveries"], "Relaying deliveries"
            )

    def start_worker(self) -> None:
        if self.worker is None:
            self.worker = self._start(
                "worker",
                ["-m", "celery", "-A", "spacecredits", "worker", "--loglevel=INFO"]
                + ["--concurrency=2", "--without-gossip", "--without-mingle"]
                + ["--without-heartbeat"],
                " ready.",
            )

    @staticmethod
    def _stop(process) -> None:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def stop_relay(self) -> None:
        self._stop(self.relay)
        self.relay = None

    def stop_worker(self) -> None:
        self._stop(self.worker)
        self.worker = None

    def close(self) -> None:
        self.stop_relay()
        self.stop_worker()
        self.redis.terminate()
        self.redis.wait(10)


def drain(broker_url: str, timeout: float = 180) -> None:
    """Wait until no email is pending and the broker's queue is empty: a run without the
    worker leaves thousands of tasks in Redis (and, past their lease, their second copies,
    which find their rows sent), and a run after it would wait behind them."""
    import redis

    from notifications.models import EmailStatus, Notification

    deadline = time.monotonic() + timeout
    pending = Notification.objects.filter(email_status=EmailStatus.PENDING)
    queue = redis.Redis.from_url(broker_url)
    while pending.exists() or queue.llen("celery"):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{pending.count()} emails pending, {queue.llen('celery')} tasks queued"
                f" after {timeout:g} s"
            )
        time.sleep(0.5)


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
