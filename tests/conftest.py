import datetime as dt
import os

import pytest
from django.conf import settings
from django.utils import timezone

from tests.databases import url_of_test_database

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _needs(item, what: str, reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1) but {reason}", pytrace=False)
    pytest.skip(f"needs {what}: {reason}")


def pytest_runtest_setup(item):
    if item.get_closest_marker("redis") and not settings.CELERY_BROKER_URL.startswith("redis"):
        _needs(item, "Redis", "CELERY_BROKER_URL does not point at Redis")


@pytest.fixture(autouse=True, scope="session")
def flush_past_the_ledgers_guard():
    """Transactional tests end with a flush (TRUNCATE of every table), which the ledger's
    triggers refuse (credits/sql/append_only.sql). The tests connect as a superuser, the
    one role that may switch triggers off for a moment: the flush does so, in its own
    transaction, and nothing else does."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.execute_sql_flush

    def flush_with_triggers_off(self, sql_list):
        flush(self, ["SET LOCAL session_replication_role = replica", *sql_list])

    DatabaseOperations.execute_sql_flush = flush_with_triggers_off
    yield
    DatabaseOperations.execute_sql_flush = flush


class Clock:
    """The time the app sees through django.utils.timezone.now()."""

    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now

    def set_local(self, year, month, day, hour=12, minute=0, second=0) -> dt.datetime:
        """Set the clock to a wall-clock moment in the space's time zone."""
        naive = dt.datetime(year, month, day, hour, minute, second)
        self.now = timezone.make_aware(naive, timezone.get_default_timezone())
        return self.now

    def today(self) -> dt.date:
        return timezone.localdate(self.now)


@pytest.fixture
def clock(monkeypatch):
    """A movable clock, starting at noon on 1 Jun 2026 in the space's time zone."""
    moving = Clock(timezone.now())
    moving.set_local(2026, 6, 1, 12)
    monkeypatch.setattr(timezone, "now", moving)
    return moving


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in the test process (as `make demo` does without a broker)."""
    from spacecredits.celery import app as celery_app

    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def adjuster(client):
    """Staff with `credits.adjust_balance`, logged in on `client`."""
    from django.contrib.auth.models import Permission

    from tests.factories import StaffFactory

    admin = StaffFactory(first_name="Ada", last_name="Admin")
    admin.user_permissions.add(Permission.objects.get(codename="adjust_balance"))
    client.force_login(admin)
    return admin


@pytest.fixture
def database_url(db) -> str:
    """The test database as a DATABASE_URL, for a process or connection of its own."""
    return url_of_test_database()


# Webhooks: a receiver on 127.0.0.1 (tests/api/webhook_receiver.py), and retries at once to it.
@pytest.fixture
def receiver():
    from tests.api.webhook_receiver import start_receiver

    receiver = start_receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def fast_retries(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOK_RETRY_SECONDS = [0] * 7
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
