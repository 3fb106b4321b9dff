"""Email delivery with a real relay and a real Celery worker process on a real Redis broker.

The relay (`manage.py relay_deliveries`) and the worker (`celery -A spacecredits worker`)
run against the pytest database, with the database email sink
(notifications.backends.DatabaseEmailBackend), so the test can count every email. The
worker is killed with SIGKILL, a process is killed right after its commit, and Redis is
stopped and started empty, while adjustments go on: every notification gets exactly one
email, within 60 s of the recovery (each test prints how long it took).
"""

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from credits import services
from notifications import services as notifications
from notifications.models import CapturedEmail, EmailStatus, Notification
from spacecredits.celery import app as celery_app
from tests.databases import url_of_test_database
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
DELIVERY_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Worker:
    """A `celery worker` subprocess (prefork, 2 processes) on the test database."""

    def __init__(self, broker_url: str, log_dir: Path, **env):
        self.broker_url = broker_url
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "DATABASE_URL": url_of_test_database(),
            "CELERY_BROKER_URL": broker_url,
            "EMAIL_BACKEND": "notifications.backends.DatabaseEmailBackend",
            "SECRET_KEY": "worker-test-secret",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = self.log_dir / f"worker-{self.starts}.log"
        self.log = log
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "spacecredits",
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--hostname",
                f"notify-test-{os.getpid()}-{self.starts}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Its own process group: one signal reaches all.
        )
        deadline = time.monotonic() + 30
        while " ready." not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The worker did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)

    def kill_pool_processes(self):
        """SIGKILL the pool processes: the worker requeues the tasks they were running
        (task_reject_on_worker_lost) and forks new ones."""
        children = subprocess.run(  # noqa: S603
            ["pgrep", "-P", str(self.process.pid)],  # noqa: S607
            capture_output=True,
            text=True,
        ).stdout.split()
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)

    def kill(self):
        """SIGKILL the worker and its pool processes: no shutdown, no acknowledgements."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


class Relay:
    """A `manage.py relay_deliveries` subprocess on the test database."""

    def __init__(self, broker_url: str, log_dir: Path, **env):
        self.log = log_dir / "relay.log"
        self.env = {**Worker(broker_url, log_dir).env, "PYTHONUNBUFFERED": "1", **env}
        self.process = None

    def start(self):
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "relay_deliveries"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while "Relaying deliveries" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The relay did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


class RedisServer:
    """A Redis of the test's own, without persistence, so a restart loses everything."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(  # noqa: S603
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@contextmanager
def publishing_to(broker_url: str):
    """Point this process's Celery producer at another broker for the block."""

    def reset():
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    before = os.environ.get("CELERY_BROKER_URL"), celery_app.conf.broker_url
    os.environ["CELERY_BROKER_URL"] = celery_app.conf.broker_url = broker_url
    reset()
    try:
        yield
    finally:
        os.environ["CELERY_BROKER_URL"], celery_app.conf.broker_url = before
        reset()


@pytest.fixture
def worker_on(tmp_path):
    started = []

    def _start(broker_url, **env):
        worker = Worker(broker_url, tmp_path, **env)
        started.append(worker)
        worker.start()
        return worker

    yield _start
    for worker in started:
        worker.stop()


@pytest.fixture
def relay_on(tmp_path):
    started = []

    def _start(broker_url, **env):
        relay = Relay(broker_url, tmp_path, **env)
        started.append(relay)
        relay.start()
        return relay

    yield _start
    for relay in started:
        relay.stop()


@pytest.fixture
def own_redis():
    server = RedisServer(_free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def members():
    return UserFactory.create_batch(10)


def adjust(members, count, *, start=0, during=None):
    """`count` adjustments spread over the members; `during(i)` runs before the i-th."""
    for i in range(start, start + count):
        if during:
            during(i)
        services.add_credits(members[i % len(members)], 1, memo=f"Adjustment {i}")


def tasks_lost_with_pool_processes(worker: Worker) -> int:
    logs = "".join(path.read_text() for path in worker.log_dir.glob("worker-*.log"))
    return len(set(re.findall(r"Worker exited prematurely: signal 9 \(SIGKILL\) Job: (\d+)", logs)))


def wait_for_emails(expected: int, timeout: float = DELIVERY_TIMEOUT) -> int:
    deadline = time.monotonic() + timeout
    while (sent := CapturedEmail.objects.count()) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return sent


def assert_exactly_one_email_each():
    notices = {
        notifications.email_message_id(pk)
        for pk in Notification.objects.values_list("pk", flat=True)
    }
    emails = Counter(CapturedEmail.objects.values_list("message_id", flat=True))
    assert {mid for mid, n in emails.items() if n > 1} == set(), "an email was sent twice"
    assert set(emails) == notices, "a notification has no email"
    assert not Notification.objects.exclude(email_status=EmailStatus.SENT).exists()


def latencies_ms(after_pk: int = 0) -> list[float]:
    """Milliseconds from each notification's creation (in the adjustment) to its email."""
    rows = Notification.objects.filter(pk__gt=after_pk).values_list("pk", "created_at")
    created = {notifications.email_message_id(pk): at for pk, at in rows}
    return sorted(
        (sent_at - created[mid]).total_seconds() * 1000
        for mid, sent_at in CapturedEmail.objects.values_list("message_id", "created_at")
        if mid in created
    )


def report(capsys, label: str, values: list[float]):
    p50 = statistics.median(values)
    p95 = statistics.quantiles(values, n=20)[18]
    with capsys.disabled():
        print(f"\n[delivery] {label}: n={len(values)} p50={p50:.0f} ms p95={p95:.0f} ms")


@pytest.fixture
def configured_broker():
    """The broker from CELERY_BROKER_URL, emptied of tasks other test runs left."""
    celery_app.control.purge()
    return celery_app.conf.broker_url


def recovered(capsys, label: str, expected: int, since: float) -> float:
    """Wait for `expected` emails in all; print and return the seconds since `since`."""
    sent = wait_for_emails(expected)
    seconds = time.monotonic() - since
    with capsys.disabled():
        print(f"\n[recovery] {label}: {sent}/{expected} emails, last {seconds:.1f} s after")
    assert sent == expected, f"{expected - sent} email(s) missing {DELIVERY_TIMEOUT} s after"
    assert seconds <= DELIVERY_TIMEOUT
    return seconds


def test_200_adjustments_with_the_worker_killed_mid_run_all_out_within_60_s_none_doubled(
    worker_on, relay_on, configured_broker, members, capsys
):
    relay_on(configured_broker)
    worker = worker_on(configured_broker)
    restarted = []

    def kill_and_restart(i):
        if i == 50:
            worker.kill_pool_processes()
        if i == 80:
            worker.kill()
        if i == 140:
            worker.start()
            restarted.append(time.monotonic())

    adjust(members, 200, during=kill_and_restart)
    lost = tasks_lost_with_pool_processes(worker)
    recovered(
        capsys,
        f"worker SIGKILLed mid-run ({lost} task(s) lost with pool processes), restarted",
        200,
        restarted[0],
    )
    assert_exactly_one_email_each()
    report(capsys, "200 adjustments, incl. SIGKILLs of the worker", latencies_ms())

    # Latency without a queue in front: one adjustment every 100 ms.
    last_pk = Notification.objects.order_by("pk").last().pk
    adjust(members, 30, start=200, during=lambda i: time.sleep(0.1))
    assert wait_for_emails(230) == 230
    assert_exactly_one_email_each()
    report(capsys, "30 adjustments, one every 100 ms", latencies_ms(after_pk=last_pk))


KILLED_AFTER_COMMIT = """
import os, signal, django
django.setup()
from django.db import transaction
from credits import services
from customers.models import User
with transaction.atomic():
    # The first hook to run after commit kills the process: no other hook runs.
    transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
    services.add_credits(User.objects.get(pk={pk}), 7, memo="Killed after commit")
"""


def test_a_process_killed_right_after_its_commit_still_gets_its_email_out(
    worker_on, relay_on, configured_broker, members, capsys, tmp_path
):
    relay_on(configured_broker)
    worker = worker_on(configured_broker)
    started = time.monotonic()
    killed = subprocess.run(  # noqa: S603
        [sys.executable, "-c", KILLED_AFTER_COMMIT.format(pk=members[0].pk)],
        cwd=ROOT,
        env={**worker.env, "DJANGO_SETTINGS_MODULE": "spacecredits.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    recovered(capsys, "web process SIGKILLed right after its commit", 1, started)
    assert Notification.objects.get().body.endswith("Memo: Killed after commit")
    assert_exactly_one_email_each()


@contextmanager
def supervised(worker: Worker):
    """Start the worker again whenever it exits, as systemd or the Procfile loop would.

    Needed: when Redis goes away while the worker holds unacknowledged tasks (late ack),
    kombu 5.7 can fail in restoring them ("Unrecoverable error: AttributeError ...
    'hostname'") and the worker process exits.
    """
    stop = threading.Event()
    restarts = []

    def watch():
        while not stop.wait(0.2):
            if worker.process.poll() is not None:
                restarts.append(time.monotonic())
                try:
                    worker.start()
                except RuntimeError:  # Not ready yet (Redis away): looked at again.
                    pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield restarts
    finally:
        stop.set()
        watcher.join(60)


def test_redis_stopped_for_20_s_and_started_empty_all_out_within_60_s_none_doubled(
    own_redis, worker_on, relay_on, members, capsys
):
    relay_on(own_redis.url)
    with supervised(worker_on(own_redis.url)) as restarts:
        adjust(members, 50)
        assert wait_for_emails(50) == 50

        own_redis.stop()
        stopped = time.monotonic()
        adjust(members, 40, start=50, during=lambda i: time.sleep(0.5))
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        own_redis.start()  # Empty: no persistence.
        seconds = recovered(
            capsys,
            f"Redis stopped {time.monotonic() - stopped:.0f} s, started empty"
            f" (worker restarted {len(restarts)} time(s))",
            90,
            time.monotonic(),
        )
    assert_exactly_one_email_each()
    assert seconds <= DELIVERY_TIMEOUT
    report(capsys, "90 adjustments, incl. a Redis outage", latencies_ms())


def _timed_adjustments(members, count: int, start: int) -> float:
    """The median seconds of `count` adjustments."""
    times = []
    for i in range(start, start + count):
        began = time.perf_counter()
        services.add_credits(members[i % len(members)], 1, memo=f"Adjustment {i}")
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def test_an_adjustment_with_the_broker_down_is_as_fast_and_its_email_goes_out_when_it_is_back(
    own_redis, worker_on, relay_on, members, capsys
):
    relay_on(own_redis.url)
    with publishing_to(own_redis.url):  # This process's Celery is configured at it too.
        with supervised(worker_on(own_redis.url)):
            up = _timed_adjustments(members, 30, start=0)
            assert wait_for_emails(30) == 30
            own_redis.stop()  # Its port is closed now.
            down = _timed_adjustments(members, 30, start=30)
            own_redis.start()
            back = time.monotonic()
            recovered(capsys, "broker down during 30 adjustments, then back", 60, back)
    with capsys.disabled():
        print(
            f"[delivery] adjustment median: {up * 1000:.1f} ms broker up,"
            f" {down * 1000:.1f} ms broker down"
        )
    assert down <= up * 1.5 + 0.02
    assert_exactly_one_email_each()


def test_an_email_that_cannot_be_sent_ends_failed_after_its_retries(
    worker_on, relay_on, configured_broker, members
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    smtp = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(closed_port),
        "NOTIFICATION_RETRY_BASE_SECONDS": "0.05",
    }
    relay_on(configured_broker, **smtp)
    worker_on(configured_broker, **smtp)
    services.add_credits(members[0], 5)
    notification = Notification.objects.get()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        notification.refresh_from_db()
        if notification.email_status == EmailStatus.FAILED:
            break
        time.sleep(0.2)
    assert notification.email_status == EmailStatus.FAILED
    assert notification.email_attempts == notifications.MAX_EMAIL_ATTEMPTS
    assert "ConnectionRefusedError" in notification.email_error
    assert notification.next_attempt_at is None
