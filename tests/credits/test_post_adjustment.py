"""On PostgreSQL an adjustment is one call of the `credits_post_adjustment` function.

Outside a transaction (as in the app's views, Celery tasks and the benchmarks) that call
is a transaction of its own; these tests run there, with committed data, and check what
the in-transaction tests elsewhere cannot: the one round trip, the way back into a
transaction when expirations are due, and that a refusal leaves nothing behind.
"""

import datetime as dt
from contextlib import nullcontext
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import transaction

from credits import services
from credits.exceptions import IdempotencyConflict, InsufficientCredits
from credits.models import CreditAccount, CreditTransaction
from notifications.models import EmailStatus, Notification, NotificationPreferences
from tests.credits.ledger import assert_chain_intact, assert_lots_consistent, snapshot
from tests.factories import CompanyFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
FIELDS = [
    "pk",
    "account_id",
    "seq",
    "kind",
    "amount",
    "balance_after",
    "memo",
    "actor_id",
    "created_at",
    "expires_on",
    "idempotency_key",
]


def as_stored(recorded: CreditTransaction) -> dict:
    return {name: getattr(recorded, name) for name in FIELDS}


@pytest.mark.parametrize("in_a_transaction", [False, True])
def test_the_returned_transaction_is_the_row_stored(clock, in_a_transaction):
    member, admin = UserFactory(), StaffFactory()
    with transaction.atomic() if in_a_transaction else nullcontext():
        added = services.add_credits(
            member,
            "12.50",
            expires_on=dt.date(2026, 7, 1),
            memo="Plan",
            actor=admin,
            idempotency_key="a-1",
        )
        clock.advance(minutes=1)
        deducted = services.deduct_credits(member, 2, memo="Room", idempotency_key="d-1")
    for recorded in (added, deducted):
        assert as_stored(recorded) == as_stored(CreditTransaction.objects.get(pk=recorded.pk))
        assert recorded.actor == (admin if recorded is added else None)
    assert (added.seq, deducted.seq) == (1, 2)
    assert deducted.balance_after == D("10.50")
    assert deducted.created_at == clock.now


def test_an_adjustment_is_one_statement(clock, django_assert_num_queries):
    """Lock, checks, ledger row, lots, account and notifications: one round trip, so the
    account lock is never held while Python works (a company's managers are looked up
    first, before the lock). Emails are off: without a broker (make test on its defaults)
    Celery runs them in-process after the commit, and they are not the adjustment's."""
    member, company, manager = UserFactory(), CompanyFactory(), UserFactory()
    company.memberships.create(user=manager, role="manager")
    for user in (member, manager):
        NotificationPreferences.objects.create(user=user, email_credit_updates=False)
    services.add_credits(member, 10)
    services.add_credits(company, 10)
    for _ in range(6):  # past the point where the statement is prepared
        with django_assert_num_queries(1):
            services.deduct_credits(member, 1)
    with django_assert_num_queries(1):
        services.add_credits(member, 5, expires_on=dt.date(2026, 7, 1))
    with django_assert_num_queries(2):
        services.deduct_credits(company, 3)
    assert CreditAccount.objects.get(user=member).balance == D("9")
    assert CreditAccount.objects.get(company=company).balance == D("7")


def test_a_newcomer_has_an_account_and_a_refused_first_adjustment_changes_it_not(clock):
    newcomer = UserFactory()
    opened = CreditAccount.objects.get(user=newcomer)
    assert (opened.balance, opened.last_seq, opened.created_at) == (0, 0, newcomer.date_joined)
    with pytest.raises(InsufficientCredits):
        services.deduct_credits(newcomer, 1)
    with pytest.raises(ValidationError):
        services.add_credits(newcomer, 5, expires_on=dt.date(2026, 5, 31))
    account = CreditAccount.objects.get(user=newcomer)
    assert (account.balance, account.last_seq, account.last_transaction_at) == (0, 0, None)
    assert not CreditTransaction.objects.filter(account=account).exists()
    assert not Notification.objects.filter(recipient=newcomer).exists()
    services.add_credits(newcomer, 5, expires_on=dt.date(2026, 6, 1))  # today is fine
    assert CreditAccount.objects.get(user=newcomer).balance == D("5")


def test_due_credits_expire_first_even_outside_a_transaction(clock):
    member = UserFactory()
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 5))
    services.add_credits(member, 10)
    clock.set_local(2026, 6, 10, 9)

    deducted = services.deduct_credits(member, 3)

    rows = list(CreditTransaction.objects.filter(account__user=member).order_by("seq"))
    assert [(row.kind, row.amount) for row in rows] == [
        ("admin_allocation", D("5")),
        ("admin_allocation", D("10")),
        ("expiration", D("-5")),
        ("admin_charge", D("-3")),
    ]
    assert deducted.seq == 4 and deducted.balance_after == D("7")
    account = CreditAccount.objects.get(user=member)
    assert_chain_intact(account)
    assert_lots_consistent(account)
    kinds = list(Notification.objects.filter(recipient=member).values_list("kind", flat=True))
    assert sorted(kinds) == [
        "credits_added",
        "credits_added",
        "credits_deducted",
        "credits_expired",
    ]


def test_a_refused_deduction_leaves_nothing_not_even_the_due_expiration(clock):
    member = UserFactory()
    services.add_credits(member, 5, expires_on=dt.date(2026, 6, 5))
    clock.set_local(2026, 6, 10, 9)
    before, notices = snapshot(), Notification.objects.count()

    with pytest.raises(InsufficientCredits) as refused:
        services.deduct_credits(member, 3)

    assert refused.value.available == 0
    assert snapshot() == before
    assert Notification.objects.count() == notices


def test_a_replayed_key_records_nothing_and_a_reused_key_is_refused():
    member = UserFactory()
    first = services.add_credits(member, 5, idempotency_key="form-1")
    again = services.add_credits(member, 5, idempotency_key="form-1")
    assert again.pk == first.pk
    with pytest.raises(IdempotencyConflict):
        services.add_credits(member, 6, idempotency_key="form-1")
    assert CreditTransaction.objects.filter(account__user=member).count() == 1
    assert Notification.objects.filter(recipient=member).count() == 1


def test_notifications_go_to_managers_with_their_email_choice(eager_tasks):
    """The function writes one notification per manager; an email is sent (after the
    commit) only to those who did not turn credit-update emails off."""
    company = CompanyFactory(name="Acme")
    keen, quiet = UserFactory(), UserFactory()
    for manager in (keen, quiet):
        company.memberships.create(user=manager, role="manager")
    company.memberships.create(user=UserFactory(), role="member")
    NotificationPreferences.objects.create(user=quiet, email_credit_updates=False)

    added = services.add_credits(company, 25, memo="Team pack")

    about = Notification.objects.filter(reference=f"transaction:{added.pk}")
    written = {n.recipient_id: n for n in about}
    assert set(written) == {keen.pk, quiet.pk}
    assert written[keen.pk].body == (
        "25 credits were added to Acme's balance. They never expire. Memo: Team pack"
    )
    assert written[keen.pk].balance_after == D("25")
    assert written[keen.pk].link == f"/membership/companies/{company.pk}/transactions/"
    assert written[keen.pk].email_status == EmailStatus.SENT
    assert written[quiet.pk].email_status == EmailStatus.OFF
    assert [message.to for message in mail.outbox] == [[keen.email]]
