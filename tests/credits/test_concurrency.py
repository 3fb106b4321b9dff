"""Adjustments on separate database connections at the same moment, on PostgreSQL.

Each adjustment locks the customer's account row first (on PostgreSQL inside the
`credits_post_adjustment` function). The last test takes the lock out and shows the
same race going wrong.
"""

import datetime as dt
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import IntegrityError, close_old_connections, connection
from django.utils import timezone

from credits import ledger_sql, selectors, services
from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditLot, CreditLotUsage, CreditTransaction
from tests.credits.ledger import assert_chain_intact, assert_lots_consistent
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def run_at_once(calls):
    """Run each call on its own thread and connection, released together by a barrier.

    Returns each call's result or the exception it raised.
    """
    barrier = threading.Barrier(len(calls))

    def run(call):
        try:
            barrier.wait(timeout=30)
            return call()
        except Exception as error:  # noqa: BLE001 - the test inspects what was raised
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(run, calls))
    close_old_connections()
    return results


def test_24_deductions_of_1_against_a_balance_of_10_spread_over_lots():
    member = UserFactory()
    services.add_credits(member, 3, expires_on=timezone.localdate() + dt.timedelta(days=30))
    services.add_credits(member, 2, expires_on=timezone.localdate() + dt.timedelta(days=30))
    services.add_credits(member, 4, expires_on=timezone.localdate() + dt.timedelta(days=90))
    services.add_credits(member, 1)

    results = run_at_once([lambda: services.deduct_credits(member, 1) for _ in range(24)])

    succeeded = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    other_errors = [r for r in results if isinstance(r, Exception) and r not in refused]
    assert other_errors == []  # no deadlock, no serialisation failure, nothing else
    assert len(succeeded) == 10
    assert len(refused) == 14
    assert selectors.get_balance(member) == 0
    assert not CreditLot.objects.filter(remaining__lt=0).exists()
    account = CreditAccount.objects.get(user=member)
    assert sorted(t.balance_after for t in succeeded) == [D(n) for n in range(10)]
    assert_chain_intact(account)
    assert_lots_consistent(account)


def test_concurrent_calls_with_one_idempotency_key_record_one_transaction():
    member = UserFactory()
    services.add_credits(member, 100)
    results = run_at_once(
        [
            lambda: services.deduct_credits(member, 7, memo="Room", idempotency_key="pay-42")
            for _ in range(12)
        ]
    )
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert CreditTransaction.objects.filter(kind="admin_charge").count() == 1
    assert selectors.get_balance(member) == D("93")


def test_first_adjustments_of_a_new_customer_at_once_share_one_account():
    company = CompanyFactory()
    results = run_at_once([lambda: services.add_credits(company, 5) for _ in range(10)])
    assert all(not isinstance(r, Exception) for r in results), results
    assert CreditAccount.objects.filter(company=company).count() == 1
    assert selectors.get_balance(company) == D("50")
    assert_chain_intact(CreditAccount.objects.get(company=company))


def test_concurrent_adds_and_deducts_keep_every_balance_chain_intact():
    customers = [UserFactory(), UserFactory(), CompanyFactory()]
    for customer in customers:
        services.add_credits(customer, 20)
    rng = random.Random(7)
    calls = []
    for _ in range(36):
        customer = rng.choice(customers)
        amount = D(rng.randint(1, 800)) / 100
        if rng.random() < 0.5:
            expires_on = rng.choice(
                [None, timezone.localdate() + dt.timedelta(days=rng.randint(1, 60))]
            )
            calls.append(
                lambda c=customer, a=amount, e=expires_on: services.add_credits(c, a, expires_on=e)
            )
        else:
            calls.append(lambda c=customer, a=amount: services.deduct_credits(c, a))

    results = run_at_once(calls)

    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientCredits)
    ]
    assert unexpected == []
    for customer in customers:
        account = CreditAccount.objects.get(pk=customer.credit_account.pk)
        assert_chain_intact(account)
        assert_lots_consistent(account)
        assert selectors.get_balance(customer) == account.balance


@pytest.fixture
def adjustments_without_the_lock(monkeypatch):
    """The services call a copy of credits_post_adjustment (credits/sql/post_adjustment.sql)
    under another name, with its `FOR UPDATE` taken out and a pause after it reads the
    account, so that every writer reads the same balance. The real function is not touched."""
    unlocked = (
        ledger_sql.read("post_adjustment.sql")
        .replace("credits_post_adjustment", "credits_test_unlocked")
        .replace("FOR UPDATE;", ";")
        .replace(
            "    account_pk := account.id;",
            "    PERFORM pg_sleep(0.2);\n    account_pk := account.id;",
        )
    )
    assert "FOR UPDATE" not in unlocked and "pg_sleep" in unlocked
    with connection.cursor() as cursor:
        cursor.execute(unlocked)
    monkeypatch.setattr(
        services,
        "POST_ADJUSTMENT_SQL",
        services.POST_ADJUSTMENT_SQL.replace("credits_post_adjustment", "credits_test_unlocked"),
    )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP FUNCTION credits_test_unlocked")


def test_without_the_account_lock_the_same_race_goes_wrong(adjustments_without_the_lock):
    """The first test with the lock taken out: writers that read the account at the same
    moment collide, so that test would catch a lost lock (here the unique (account, seq)
    constraint is what still refuses the lost updates)."""
    member = UserFactory()
    services.add_credits(member, 10)

    results = run_at_once([lambda: services.deduct_credits(member, 1) for _ in range(24)])

    collided = [r for r in results if isinstance(r, IntegrityError)]
    assert collided  # lost updates, refused here by the database; never seen with the lock


def test_the_sweep_on_two_connections_beside_adjustments(clock, monkeypatch, settings):
    """The sweep's batches run on two connections at once (outside a transaction) while
    the same customers spend: every due lot expires exactly once, each customer's history
    stays one chain, and each expiration has its one notice."""
    from notifications.models import Notification

    settings.CREDITS_SWEEP_CONNECTIONS = 2
    monkeypatch.setattr(services, "SWEEP_BATCH", 3)  # 12 customers: 4 batches
    threads, expire_batch = set(), services._expire_batch

    def watched(account_ids, now):
        threads.add(threading.current_thread().name)
        return expire_batch(account_ids, now)

    monkeypatch.setattr(services, "_expire_batch", watched)
    customers = [UserFactory() for _ in range(12)]
    for customer in customers:
        services.add_credits(customer, 4, expires_on=dt.date(2026, 6, 2))
        services.add_credits(customer, 6, expires_on=dt.date(2026, 6, 3))
        services.add_credits(customer, 20)
    clock.set_local(2026, 6, 10, 9)

    results = run_at_once(
        [services.expire_due_credits]
        + [lambda c=customer: services.deduct_credits(c, 5) for customer in customers[::2]]
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert threads and all(name.startswith("expiry-sweep") for name in threads)  # the pool
    # 24 lots were due. A deduction that came first expired its customer's two itself (6
    # deductions: at most 12); the sweep expired the rest, and no lot twice.
    assert 12 <= results[0] <= 24
    assert CreditLotUsage.objects.filter(transaction__kind="expiration").count() == 24
    assert not CreditLot.objects.filter(remaining__gt=0, expires_on__lt=dt.date(2026, 6, 10))
    for index, customer in enumerate(customers):
        account = CreditAccount.objects.get(user=customer)
        assert_chain_intact(account)
        assert_lots_consistent(account)
        expirations = account.transactions.filter(kind="expiration")
        assert sorted(e.amount for e in expirations) == [D("-6"), D("-4")]
        assert account.balance == (D("15") if index % 2 == 0 else D("20"))
        assert Notification.objects.filter(recipient=customer, kind="credits_expired").count() == 2
