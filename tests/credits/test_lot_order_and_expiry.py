"""What deductions and expiry write: the lots taken in the deduction order, one expiration
per date, dated at the moment of expiry."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from credits import selectors, services
from credits.models import CreditAccount, CreditLot, CreditTransaction, TransactionKind
from tests.factories import UserFactory


def remaining(customer):
    lots = CreditLot.objects.filter(account__user=customer).order_by("id")
    return [lot.remaining for lot in lots]


@pytest.mark.django_db
def test_deduction_takes_earliest_expiring_then_oldest_then_never_expiring(clock):
    member = UserFactory()
    today = clock.today()
    services.add_credits(member, 5, expires_on=today + dt.timedelta(days=10))  # 3rd
    services.add_credits(member, 5)  # never expires: last
    services.add_credits(member, 5, expires_on=today + dt.timedelta(days=5))  # 1st
    clock.advance(minutes=1)
    services.add_credits(member, 5, expires_on=today + dt.timedelta(days=5))  # 2nd

    charged = services.deduct_credits(member, Decimal("12.50"))

    assert remaining(member) == [Decimal("2.50"), Decimal("5"), Decimal("0"), Decimal("0")]
    taken = sorted((usage.lot_id, usage.amount) for usage in charged.usages.all())
    lots = list(CreditLot.objects.filter(account__user=member).order_by("id"))
    assert taken == [(lots[0].id, Decimal("2.50")), (lots[2].id, 5), (lots[3].id, 5)]
    assert charged.balance_after == Decimal("7.50")
    assert selectors.get_balance(member) == Decimal("7.50")


@pytest.mark.django_db
def test_due_lots_expire_one_transaction_per_date_before_a_deduction(clock):
    member = UserFactory()
    clock.set_local(2026, 6, 1, 12)
    services.add_credits(member, 3, expires_on=dt.date(2026, 6, 5))
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 5))
    services.add_credits(member, 2, expires_on=dt.date(2026, 6, 7))
    services.add_credits(member, 10)
    services.deduct_credits(member, 1)  # from the first lot: 2 of its 3 remain

    clock.set_local(2026, 6, 9, 9)
    services.deduct_credits(member, 4)

    rows = list(CreditTransaction.objects.filter(account__user=member).order_by("seq"))
    expirations = [row for row in rows if row.kind == TransactionKind.EXPIRATION]
    assert [(row.seq, row.amount, row.balance_after) for row in expirations] == [
        (6, Decimal("-6"), Decimal("12")),
        (7, Decimal("-2"), Decimal("10")),
    ]
    assert [row.memo for row in expirations] == [
        "Credits that expired on 5 Jun 2026",
        "Credits that expired on 7 Jun 2026",
    ]
    # The end of 5 Jun in the space's zone: midnight starting 6 Jun.
    end_of_day = timezone.make_aware(dt.datetime(2026, 6, 6), timezone.get_default_timezone())
    assert expirations[0].created_at == end_of_day
    assert rows[-1].kind == TransactionKind.ADMIN_CHARGE and rows[-1].balance_after == 6
    assert remaining(member) == [0, 0, 0, 6]
    assert sum(usage.amount for usage in expirations[0].usages.all()) == 6


@pytest.mark.django_db
def test_sweep_expires_every_customer_in_batches(clock, monkeypatch):
    monkeypatch.setattr(services, "SWEEP_BATCH", 2)
    clock.set_local(2026, 6, 1, 12)
    members = UserFactory.create_batch(5)
    for n, member in enumerate(members):
        services.add_credits(member, n + 1, expires_on=dt.date(2026, 6, 2))
        services.add_credits(member, 10)
    clock.set_local(2026, 6, 3, 1)

    assert services.expire_due_credits() == 5
    assert services.expire_due_credits() == 0

    for n, member in enumerate(members):
        newest = CreditTransaction.objects.filter(account__user=member).first()
        assert (newest.seq, newest.kind, newest.amount) == (3, "expiration", -(n + 1))
        assert newest.balance_after == 10
        account = CreditAccount.objects.get(user=member)
        assert account.balance == 10 and account.last_seq == 3
        assert selectors.get_expiration_breakdown(member) == [(None, Decimal("10.00"))]
