"""The database refuses a TRUNCATE of the ledger, a plain UPDATE of what it derives (an
account's balance, a lot's remaining), and a ledger row that does not continue its chain
or lacks its lot or usages: whoever connects, the tests' superuser or the application's
role (which owns no ledger table, so it cannot switch the triggers off either)."""

import datetime as dt
from contextlib import contextmanager, nullcontext
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from credits import selectors, services
from credits.models import CreditAccount, CreditLot
from customers.models import Company
from tests.credits.ledger import assert_chain_intact, assert_lots_consistent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

LEDGER_TABLES = [
    "credits_creditaccount",
    "credits_credittransaction",
    "credits_creditlot",
    "credits_creditlotusage",
]
APP_ROLE = "spacecredits_test_app"


@contextmanager
def as_application_role():
    """Run as a role that may read and write every table (TRUNCATE included) but owns
    none, as production's application role does (README, "Running it for real")."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN;"
            " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public"
            f" TO {APP_ROLE}; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};"
            f" SET ROLE {APP_ROLE}"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def run(sql: str) -> None:
    """One statement in a transaction of its own, committed."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


@pytest.fixture
def ledger(clock):
    member = UserFactory()
    services.add_credits(member, 10, expires_on=dt.date(2026, 7, 1))
    services.add_credits(member, 5)
    services.deduct_credits(member, 4)
    return member


def unchanged(member):
    account = CreditAccount.objects.get(user=member)
    assert account.balance == Decimal("11") == selectors.get_balance(member)
    assert_chain_intact(account)
    assert_lots_consistent(account)


@pytest.mark.parametrize("role", ["superuser", "application"])
@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_no_truncate_of_a_ledger_table(ledger, role, table):
    with as_application_role() if role == "application" else nullcontext():
        with pytest.raises(IntegrityError, match="append-only: TRUNCATE"):
            run(f"TRUNCATE {table} CASCADE")
    unchanged(ledger)


@pytest.mark.parametrize("role", ["superuser", "application"])
@pytest.mark.parametrize(
    "change, refusal",
    [
        ("UPDATE credits_creditaccount SET balance = balance + 1000", "newest transaction"),
        ("UPDATE credits_creditaccount SET balance = 0, last_seq = 0", "newest transaction"),
        ("UPDATE credits_creditlot SET remaining = remaining - 1", "less what its usages took"),
        ("UPDATE credits_creditlot SET remaining = amount", "less what its usages took"),
    ],
)
def test_a_balance_or_remaining_set_by_hand_is_refused(ledger, role, change, refusal):
    with as_application_role() if role == "application" else nullcontext():
        with pytest.raises(IntegrityError, match=refusal):
            run(change)
    unchanged(ledger)


@pytest.mark.parametrize(
    "seq, kind, amount, balance_after, refusal",
    [
        (1, "admin_allocation", 1000, 1011, "transaction_account_seq"),  # seq taken
        (5, "admin_allocation", 1000, 1011, "does not continue its account's chain"),  # a gap
        (None, "admin_allocation", 1000, 5000, "does not continue its account's chain"),
        (None, "admin_allocation", 1000, 1011, "has no lot of that amount"),
        (None, "admin_charge", -5, 6, "not what its usages took"),
    ],
)
def test_a_transaction_row_the_ledger_does_not_account_for_is_refused(
    ledger, seq, kind, amount, balance_after, refusal
):
    """The row continues its account's chain, or the INSERT fails; an addition without its
    lot or a deduction without its usages fails the commit."""
    account = CreditAccount.objects.get(user=ledger)
    seq = seq or account.last_seq + 1
    with as_application_role(), pytest.raises(IntegrityError, match=refusal):
        run(
            "INSERT INTO credits_credittransaction (account_id, seq, kind, amount,"
            f" balance_after, memo, created_at) VALUES ({account.pk}, {seq}, '{kind}',"
            f" {amount}, {balance_after}, '', now())"
        )
    unchanged(ledger)


def test_a_lot_or_account_that_starts_other_than_empty_is_refused(ledger):
    account = CreditAccount.objects.get(user=ledger)
    newest = account.transactions.order_by("-seq").first()
    with as_application_role(), pytest.raises(IntegrityError, match="remaining is its amount"):
        run(
            "INSERT INTO credits_creditlot (account_id, allocation_id, amount, remaining,"
            f" created_at) VALUES ({account.pk}, {newest.pk}, 5, 4, now())"
        )
    with transaction.atomic(), connection.cursor() as cursor:  # a company without its account
        cursor.execute("SET LOCAL session_replication_role = replica")
        company = Company.objects.create(name="Opened by hand")
    with as_application_role(), pytest.raises(IntegrityError, match="starts empty"):
        run(
            "INSERT INTO credits_creditaccount (company_id, balance, last_seq, created_at)"
            f" VALUES ({company.pk}, 100, 0, now())"
        )
    unchanged(ledger)


def test_an_account_is_never_deleted(ledger):
    with as_application_role(), pytest.raises(IntegrityError, match="append-only: DELETE"):
        run("DELETE FROM credits_creditaccount")
    unchanged(ledger)


def test_the_application_role_cannot_switch_the_guards_off(ledger):
    with as_application_role():
        for table in LEDGER_TABLES:
            with pytest.raises(DatabaseError, match="must be owner"):
                run(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        with pytest.raises(DatabaseError, match="permission denied"):
            run("SET session_replication_role = replica")
    unchanged(ledger)


def test_the_ledgers_own_writes_pass_the_checks_as_the_application_role(ledger, clock):
    with as_application_role():
        services.add_credits(ledger, 3, expires_on=dt.date(2026, 6, 10))
        services.deduct_credits(ledger, 2)
        clock.set_local(2026, 7, 5)
        assert services.expire_due_credits() == 2
        services.deduct_credits(ledger, 1)
    account = CreditAccount.objects.get(user=ledger)
    assert account.balance == Decimal("4") == selectors.get_balance(ledger)
    assert CreditLot.objects.filter(account=account, remaining__gt=0).count() == 1
    assert_chain_intact(account)
    assert_lots_consistent(account)
