"""`make demo`'s server (`manage.py rundemo`, no broker) runs beat's schedule in its own
process: a lot past its date is expired, and its member emailed, without anyone adjusting
the balance or starting another command."""

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.utils import timezone

from credits import selectors, services
from credits.models import CreditTransaction
from notifications.models import CapturedEmail
from tests.databases import url_of_test_database
from tests.factories import UserFactory
from tests.notifications.test_worker import _free_port

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _healthz(port: int, deadline: float) -> int:
    """/healthz's status, asked until the server listens (or the deadline passes)."""
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:  # noqa: S310
                return answer.status
        except urllib.error.URLError:
            assert time.monotonic() < deadline, "the demo server did not listen in 30 s"
            time.sleep(0.2)


@pytest.fixture
def lot_expired_yesterday(monkeypatch):
    """A member whose 5 credits expired yesterday, with no expiration row yet."""
    member = UserFactory(first_name="Maria")
    today = timezone.localdate()
    earlier = timezone.now() - dt.timedelta(days=10)
    with monkeypatch.context() as past:
        past.setattr(timezone, "now", lambda: earlier)
        services.add_credits(member, 5, expires_on=today - dt.timedelta(days=1))
    assert not CreditTransaction.objects.filter(kind="expiration").exists()
    return member


def test_the_demo_server_runs_the_expiry_sweep_and_emails_it_by_itself(
    lot_expired_yesterday, tmp_path
):
    port = _free_port()
    log = tmp_path / "rundemo.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("CELERY_BROKER_URL", "REQUIRE_SERVICES")
    }
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "rundemo", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={
            **env,
            "DATABASE_URL": url_of_test_database(),
            "DEBUG": "1",
            "EMAIL_BACKEND": "notifications.backends.DatabaseEmailBackend",
        },
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not CreditTransaction.objects.filter(kind="expiration").exists():
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no sweep in 30 s:\n" + log.read_text()[-3000:]
            time.sleep(0.2)
        assert selectors.get_balance(lot_expired_yesterday) == 0
        newest = selectors.get_transactions(lot_expired_yesterday).first()
        assert (newest.kind, newest.balance_after) == ("expiration", 0)
        expiry_emails = CapturedEmail.objects.filter(subject__contains="expired")
        while not expiry_emails.exists():
            assert time.monotonic() < deadline, "the expiry was not emailed in 30 s"
            time.sleep(0.2)
        assert expiry_emails.get().to == lot_expired_yesterday.email
        # The schedule runs at start, so the sweep may be done before the server listens.
        assert _healthz(port, deadline) == 200
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            pytest.fail("Ctrl-C did not stop the demo server")


def test_the_demo_schedule_runs_intervals_at_start_and_set_times_when_they_come():
    from celery.schedules import crontab
    from django.conf import settings

    from notifications.delivery import Schedule

    schedule = Schedule(settings.CELERY_BEAT_SCHEDULE)
    due = {name: due - time.monotonic() for due, _, name, _ in schedule.entries}
    every = {name: entry["schedule"] for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}
    for name, when in every.items():
        if isinstance(when, crontab):
            assert 0 < due[name] <= 24 * 3600, name  # its next time, within a day
        else:
            assert due[name] <= 0, name  # at start
    assert any(isinstance(when, crontab) for when in every.values())
