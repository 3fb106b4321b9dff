"""The database keeps the other verbs' invariants whoever writes: a row is reversed at most
once and a reversal never; refunds never exceed their charge; a hold's captured amount
never exceeds it and a finished hold never changes; available never goes below zero; and
the new tables are as append-only as the old ones."""

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction

from credits import services
from credits.models import CreditAccount
from tests.credits.ledger import snapshot
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

NEW_TABLES = [
    "credits_creditlotreturn",
    "credits_credithold",
    "credits_creditholdlot",
    "credits_creditbatch",
]


def refused(sql: str, params=None, *, match=None) -> None:
    before = snapshot()
    with pytest.raises(DatabaseError, match=match):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    assert snapshot() == before


def insert_row(account, kind, amount, **relations):
    """A plain INSERT of a ledger row continuing the account's chain."""
    account.refresh_from_db()
    columns = ", ".join(f"{name}_id" for name in relations)
    values = ", ".join(str(value) for value in relations.values())
    return (
        "INSERT INTO credits_credittransaction (account_id, seq, kind, amount, balance_after,"
        f" memo, created_at, {columns}) VALUES ({account.pk}, {account.last_seq + 1},"
        f" '{kind}', {amount}, {account.balance + amount}, '', now(), {values})"
    )


@pytest.fixture
def member(clock):
    member = UserFactory()
    services.add_credits(member, 10, expires_on=dt.date(2026, 7, 1))
    return member


def test_a_row_is_reversed_at_most_once_and_a_reversal_never(member):
    account = CreditAccount.objects.get(user=member)
    deduction = services.deduct_credits(member, 2)
    reversal = services.reverse_transaction(deduction)
    refused(insert_row(account, "reversal", 2, reverses=deduction.pk), match="reverses_id")
    refused(
        insert_row(account, "reversal", -2, reverses=reversal.pk),
        match="A reversal undoes an admin's addition or deduction",
    )


def test_refunds_never_exceed_their_charge(member):
    account = CreditAccount.objects.get(user=member)
    charge = services.charge_credits(member, 3, kind="booking")
    services.refund_charge(charge, 2)
    refused(
        insert_row(account, "refund", 2, refunded_charge=charge.pk),
        match="The refunds of a charge never add up to more than it",
    )


def test_a_hold_never_captures_more_than_it_holds_and_ends_once(member):
    hold = services.hold_credits(member, 4, expires_at=dt.datetime(2026, 6, 5, tzinfo=dt.UTC))
    refused(
        "UPDATE credits_credithold SET status = 'captured', captured = 5 WHERE id = %s",
        [hold.pk],
        match="hold_captured_within_amount",
    )
    refused("UPDATE credits_credithold SET amount = 9 WHERE id = %s", [hold.pk], match="only ends")
    # Captured without its booking: refused at commit.
    refused(
        "UPDATE credits_credithold SET status = 'captured', captured = 4 WHERE id = %s",
        [hold.pk],
        match="captured without its booking",
    )
    services.release_hold(hold)
    refused("UPDATE credits_credithold SET status = 'held' WHERE id = %s", [hold.pk], match="once")


def test_available_never_below_zero_and_held_is_derived(member):
    services.hold_credits(member, 6, expires_at=dt.datetime(2026, 6, 5, tzinfo=dt.UTC))
    account = CreditAccount.objects.get(user=member)
    refused("UPDATE credits_creditaccount SET held = 0 WHERE id = %s", [account.pk], match="held")
    # Even a trigger's own write cannot hold more than the balance.
    refused(
        "INSERT INTO credits_credithold (account_id, amount, captured, status, expires_at,"
        " memo, created_at) VALUES (%s, 20, 0, 'held', now() + interval '1 day', '', now())",
        [account.pk],
        match="account_held_within_balance",
    )


def test_the_new_tables_are_append_only(member):
    deduction = services.deduct_credits(member, 2)
    services.reverse_transaction(deduction)
    services.hold_credits(member, 1, expires_at=dt.datetime(2026, 6, 5, tzinfo=dt.UTC))
    refused("UPDATE credits_creditlotreturn SET amount = amount + 1")
    refused("DELETE FROM credits_creditlotreturn")
    refused("UPDATE credits_creditholdlot SET amount = amount + 1")
    refused("DELETE FROM credits_creditholdlot")
    refused("DELETE FROM credits_credithold")
    for table in NEW_TABLES:
        refused(f"TRUNCATE {table} CASCADE")
