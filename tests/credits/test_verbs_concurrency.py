"""The other verbs on separate database connections at the same moment, on PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from credits import selectors, services
from credits.exceptions import InsufficientCredits
from credits.models import CreditAccount, CreditHold, CreditTransaction
from tests.credits.ledger import assert_chain_intact, assert_lots_consistent
from tests.credits.test_concurrency import run_at_once
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def sound(*customers):
    for customer in customers:
        account = CreditAccount.objects.get(pk=customer.credit_account.pk)
        assert_chain_intact(account)
        assert_lots_consistent(account)
        assert selectors.get_available_balance(customer) >= 0


def later(days=1):
    return timezone.now() + dt.timedelta(days=days)


def test_holds_and_deductions_at_once_never_push_available_below_zero():
    member = UserFactory()
    services.add_credits(member, 4, expires_on=timezone.localdate() + dt.timedelta(days=30))
    services.add_credits(member, 6)
    calls = [lambda: services.hold_credits(member, 1, expires_at=later()) for _ in range(8)]
    calls += [lambda: services.deduct_credits(member, 1) for _ in range(8)]

    results = run_at_once(calls)

    unexpected = [
        r for r in results if isinstance(r, Exception) and not isinstance(r, InsufficientCredits)
    ]
    assert unexpected == []
    done = [r for r in results if not isinstance(r, Exception)]
    assert len(done) == 10  # exactly what was available
    held = CreditHold.objects.filter(account=member.credit_account, status="held").count()
    assert selectors.get_held_balance(member) == held
    assert selectors.get_balance(member) == held
    assert selectors.get_available_balance(member) == 0
    sound(member)


def test_transfers_both_ways_at_once_finish_without_deadlock():
    member, company = UserFactory(), CompanyFactory()
    services.add_credits(member, 50)
    services.add_credits(company, 50, expires_on=timezone.localdate() + dt.timedelta(days=9))
    calls = [lambda: services.transfer_credits(member, company, 1) for _ in range(10)]
    calls += [lambda: services.transfer_credits(company, member, 2) for _ in range(10)]

    results = run_at_once(calls)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert selectors.get_balance(member) == D("60")
    assert selectors.get_balance(company) == D("40")
    assert CreditTransaction.objects.filter(kind="transfer_in").count() == 20
    sound(member, company)


def test_refunds_of_one_charge_at_once_never_exceed_it():
    member = UserFactory()
    services.add_credits(member, 4, expires_on=timezone.localdate() + dt.timedelta(days=5))
    services.add_credits(member, 6)
    charge = services.charge_credits(member, 10, kind="booking")

    results = run_at_once([lambda: services.refund_charge(charge, 3) for _ in range(8)])

    refunded = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refunded) == 3 and len(refused) == 5, results
    assert sum(r.amount for r in charge.refunds.all()) == D("9")
    assert selectors.get_balance(member) == D("9")
    sound(member)


def test_the_same_key_at_once_records_one_change_for_each_verb():
    member, company = UserFactory(), CompanyFactory()
    services.add_credits(member, 100)
    added = services.add_credits(member, 5)
    charge = services.charge_credits(member, 10, kind="booking")
    hold = services.hold_credits(member, 4, expires_at=later())

    calls = []
    calls += [
        lambda: services.transfer_credits(member, company, 2, idempotency_key="t") for _ in range(4)
    ]
    calls += [
        lambda: services.hold_credits(member, 3, expires_at=hold.expires_at, idempotency_key="h")
        for _ in range(4)
    ]
    calls += [lambda: services.reverse_transaction(added, idempotency_key="r") for _ in range(4)]
    calls += [lambda: services.refund_charge(charge, 1, idempotency_key="f") for _ in range(4)]
    calls += [lambda: services.capture_hold(hold, idempotency_key="c") for _ in range(4)]

    results = run_at_once(calls)

    assert [r for r in results if isinstance(r, Exception)] == []
    transfers, holds, reversals, refunds, captures = (results[i : i + 4] for i in range(0, 20, 4))
    assert len({tuple(row.pk for row in r) for r in transfers}) == 1
    assert len({r.pk for r in holds}) == 1
    assert len({r.pk for r in reversals}) == 1
    assert len({r.pk for r in refunds}) == 1
    assert len({r.pk for r in captures}) == 1
    kinds = CreditTransaction.objects.filter(account=member.credit_account).values_list(
        "kind", flat=True
    )
    assert sorted(kinds) == sorted(
        ["admin_allocation"] * 2 + ["booking"] * 2 + ["transfer_out", "reversal", "refund"]
    )
    sound(member, company)
