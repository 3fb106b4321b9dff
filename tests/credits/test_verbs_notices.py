"""What the verbs tell, and whom: a company with no active manager is told by its billing
email, like an adjustment; a hold's capture, release and expiry say what happened."""

import datetime as dt

import pytest
from django.utils import timezone

from credits import services
from notifications.models import EmailStatus, Notification
from tests.factories import CompanyFactory, MembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


def local(year, month, day, hour=12):
    return timezone.make_aware(dt.datetime(year, month, day, hour), timezone.get_default_timezone())


@pytest.fixture
def acme():
    """A company with a billing email and no active manager."""
    acme = CompanyFactory(name="Acme Ltd", email="billing@acme.example")
    MembershipFactory(company=acme, role="manager", user__is_active=False)
    return acme


def test_each_verb_of_a_company_without_managers_reaches_its_billing_email(
    acme, clock, django_capture_on_commit_callbacks, mailoutbox
):
    tom = MembershipFactory(
        company=acme, role="member", user__first_name="Tom", user__last_name="Becker"
    ).user
    with django_capture_on_commit_callbacks(execute=True):
        added = services.add_credits(acme, 50)
        services.reverse_transaction(services.add_credits(acme, 5))
        booking = services.charge_credits(acme, 4, kind="booking")
        services.refund_charge(booking)
        services.capture_hold(services.hold_credits(acme, 3, expires_at=local(2026, 6, 2)))
        services.release_hold(services.hold_credits(acme, 2, expires_at=local(2026, 6, 2)))
        services.transfer_credits(acme, tom, 6)
        services.transfer_credits(tom, acme, 1)

    to_billing = Notification.objects.filter(recipient=None)
    assert to_billing.count() == Notification.objects.exclude(recipient=tom).count() == 11
    assert {n.email_to for n in to_billing} == {"billing@acme.example"}
    assert {n.email_status for n in to_billing} == {EmailStatus.SENT}
    assert len([m for m in mailoutbox if m.to == ["billing@acme.example"]]) == 11
    subjects = [
        n.subject for n in to_billing.exclude(reference=f"transaction:{added.pk}").order_by("pk")
    ]
    assert subjects == [
        "5 credits added to Acme Ltd's balance",
        "5 credits taken back from Acme Ltd's balance",
        "4 credits deducted from Acme Ltd's balance",
        "4 credits refunded to Acme Ltd's balance",
        "3 credits held in Acme Ltd's balance",
        "3 credits deducted from Acme Ltd's balance",
        "2 credits held in Acme Ltd's balance",
        "2 credits released in Acme Ltd's balance",
        "6 credits transferred to Tom Becker",
        "1 credit transferred from Tom Becker",
    ]
    # The member is told of the transfers as ever, in the app and by email.
    assert Notification.objects.filter(recipient=tom).count() == 2


def test_a_company_with_a_manager_or_without_a_billing_email(acme, clock):
    manager = MembershipFactory(company=acme, role="manager").user
    services.reverse_transaction(services.add_credits(acme, 5))
    assert {n.recipient for n in Notification.objects.all()} == {manager}
    Notification.objects.all().delete()
    manager.memberships.update(role="member")
    acme.email = ""
    acme.save()
    services.reverse_transaction(services.add_credits(acme, 5))
    assert not Notification.objects.exists()
