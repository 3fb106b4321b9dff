"""The database itself refuses what would break the ledger, whoever writes to it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F

from credits import services
from credits.models import CreditAccount, CreditLot, CreditLotUsage, CreditTransaction
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(clock):
    member = UserFactory()
    services.add_credits(member, 10, expires_on=dt.date(2026, 7, 1), idempotency_key="k")
    services.deduct_credits(member, 4)
    return member


def refused(operation):
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            operation()


def test_lot_remaining_cannot_go_below_zero(ledger):
    refused(lambda: CreditLot.objects.update(remaining=Decimal("-0.01")))


def test_lot_remaining_cannot_exceed_its_amount(ledger):
    refused(lambda: CreditLot.objects.update(remaining=F("amount") + 1))


def test_transaction_sign_must_match_its_kind(ledger):
    account = CreditAccount.objects.get()
    for kind, amount in [("admin_allocation", -5), ("admin_charge", 5), ("expiration", 1)]:
        refused(
            lambda kind=kind, amount=amount: CreditTransaction.objects.create(
                account=account,
                seq=99,
                kind=kind,
                amount=amount,
                balance_after=10,
                created_at=account.created_at,
            )
        )


def test_idempotency_key_is_unique_per_customer(ledger):
    account = CreditAccount.objects.get()
    refused(
        lambda: CreditTransaction.objects.create(
            account=account,
            seq=99,
            kind="admin_allocation",
            amount=1,
            balance_after=7,
            created_at=account.created_at,
            idempotency_key="k",
        )
    )


def test_sequence_is_unique_per_customer(ledger):
    account = CreditAccount.objects.get()
    refused(
        lambda: CreditTransaction.objects.create(
            account=account,
            seq=1,
            kind="admin_allocation",
            amount=1,
            balance_after=7,
            created_at=account.created_at,
        )
    )


def test_account_has_exactly_one_owner(ledger):
    account = CreditAccount.objects.get()
    refused(lambda: CreditAccount.objects.filter(pk=account.pk).update(company=CompanyFactory()))


def test_balance_after_cannot_be_negative(ledger):
    account = CreditAccount.objects.get()
    refused(
        lambda: CreditTransaction.objects.create(
            account=account,
            seq=3,
            kind="admin_charge",
            amount=-100,
            balance_after=-94,
            created_at=account.created_at,
        )
    )


def test_python_refuses_to_edit_or_delete_ledger_rows(ledger):
    row = CreditTransaction.objects.first()
    row.memo = "rewritten"
    with pytest.raises(ValueError):
        row.save()
    with pytest.raises(ValueError):
        row.delete()
    usage = CreditLotUsage.objects.first()
    with pytest.raises(ValueError):
        usage.delete()


def test_postgres_refuses_updates_and_deletes_of_ledger_rows(ledger):
    refused(lambda: CreditTransaction.objects.update(memo="rewritten"))
    refused(lambda: CreditTransaction.objects.all()._raw_delete(connection.alias))
    refused(lambda: CreditLotUsage.objects.update(amount=1))
    refused(lambda: CreditLotUsage.objects.all()._raw_delete(connection.alias))
    refused(lambda: CreditLot.objects.update(amount=99))
    refused(lambda: CreditLot.objects.update(expires_on=None))
    refused(lambda: CreditLot.objects.all()._raw_delete(connection.alias))
    assert CreditTransaction.objects.filter(memo="rewritten").count() == 0


@pytest.mark.parametrize(
    "change",
    [
        "id = id + 1000",
        "account_id = (SELECT MAX(id) FROM credits_creditaccount)",
        "allocation_id = (SELECT MAX(id) FROM credits_credittransaction)",
        "amount = amount + 1",
        "expires_on = NULL",
        "created_at = created_at - interval '1 day'",
        "remaining = remaining, amount = amount + 1",
    ],
)
def test_postgres_lets_only_the_remaining_of_a_lot_change(ledger, change):
    CompanyFactory()  # a second account to point at
    services.add_credits(UserFactory(), 5)
    before = list(CreditLot.objects.order_by("pk").values_list())

    def update(sql):
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE credits_creditlot SET {sql}")  # noqa: S608 - test input

    refused(lambda: update(change))
    refused(lambda: update("remaining = remaining"))  # the usages set it, nothing else
    assert list(CreditLot.objects.order_by("pk").values_list()) == before
    member = CreditLot.objects.get(amount=5).account.customer
    services.deduct_credits(member, 2)  # what the ledger does: a usage takes from the lot
    assert CreditLot.objects.get(amount=5).remaining == 3
