"""The expiry sweep tells every customer's recipients in one batch, exactly as one
expiration at a time would."""

import datetime as dt

import pytest

from credits import services
from notifications.models import (
    EmailStatus,
    Notification,
    NotificationKind,
    NotificationPreferences,
)
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_one_sweep_tells_each_recipient_of_each_customer(clock):
    acme = CompanyFactory(name="Acme Ltd")
    first, second = (MembershipFactory(company=acme, role="manager").user for _ in range(2))
    MembershipFactory(company=acme)  # a plain member is not told
    quiet = MembershipFactory(company=CompanyFactory(name="Quiet Ltd"), role="manager").user
    NotificationPreferences.objects.create(user=quiet, email_expiry_reminders=False)
    member = UserFactory()
    gone = UserFactory(is_active=False)
    for customer in (acme, quiet.memberships.get().company, member, gone):
        services.add_credits(customer, 4, expires_on=dt.date(2026, 6, 3))
        services.add_credits(customer, 2, expires_on=dt.date(2026, 6, 5))
    Notification.objects.all().delete()

    clock.set_local(2026, 6, 9, 3)
    assert services.expire_due_credits() == 8

    told = Notification.objects.filter(kind=NotificationKind.CREDITS_EXPIRED)
    assert sorted(told.values_list("recipient__email", "body")) == sorted(
        (recipient.email, body)
        for recipient, where, the in (
            (first, "Acme Ltd's balance", "The"),
            (second, "Acme Ltd's balance", "The"),
            (quiet, "Quiet Ltd's balance", "The"),
            (member, "your balance", "Your"),
        )
        for body in (
            f"4 credits in {where} expired at the end of 3 Jun 2026."
            f" {the} balance is now 2 credits.",
            f"2 credits in {where} expired at the end of 5 Jun 2026."
            f" {the} balance is now 0 credits.",
        )
    )
    assert set(told.filter(recipient=quiet).values_list("email_status", flat=True)) == {
        EmailStatus.OFF
    }
    assert set(told.filter(recipient=member).values_list("email_status", flat=True)) == {
        EmailStatus.PENDING
    }
