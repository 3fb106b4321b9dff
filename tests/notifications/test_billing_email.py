"""A company with no active manager: its billing email gets the notices of its credits,
by email alone (no one to show them to in the app), each once."""

import datetime as dt

import pytest

from credits import notices, services
from notifications.models import EmailStatus, Notification, NotificationKind
from tests.factories import CompanyFactory, MembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


@pytest.fixture
def acme():
    acme = CompanyFactory(name="Acme Ltd", email="billing@acme.example")
    MembershipFactory(company=acme, role="member")  # plain members are not told
    MembershipFactory(company=acme, role="manager", user__is_active=False)
    return acme


def test_an_adjustment_emails_the_billing_address(
    acme, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_credits(acme, 25, memo="Plan")
    notice = Notification.objects.get()
    assert notice.recipient is None and notice.email_to == "billing@acme.example"
    assert (
        notice.body == "25 credits were added to Acme Ltd's balance. They never expire. Memo: Plan"
    )
    assert notice.email_status == EmailStatus.SENT
    (email,) = mailoutbox
    assert email.to == ["billing@acme.example"]
    assert "while it has no active manager" in email.body
    assert "Choose which emails you get" not in email.body  # no preferences to choose


def test_an_active_manager_is_told_instead(acme, mailoutbox, django_capture_on_commit_callbacks):
    manager = MembershipFactory(company=acme, role="manager").user
    with django_capture_on_commit_callbacks(execute=True):
        services.add_credits(acme, 5)
    assert [n.recipient for n in Notification.objects.all()] == [manager]
    assert [m.to for m in mailoutbox] == [[manager.email]]


def test_without_a_billing_email_nobody_is_told(acme):
    acme.email = ""
    acme.save()
    services.add_credits(acme, 5)
    assert not Notification.objects.exists()


def test_expiries_and_reminders_reach_the_billing_address_once(acme, clock):
    services.add_credits(acme, 10, expires_on=dt.date(2026, 6, 5))
    Notification.objects.all().delete()
    assert notices.send_expiry_reminders() == 1
    assert notices.send_expiry_reminders() == 0  # told once per address and lot
    reminder = Notification.objects.get(kind=NotificationKind.CREDITS_EXPIRING)
    assert reminder.email_to == "billing@acme.example"
    assert reminder.subject == "10 credits expire on 5 Jun 2026"
    clock.advance(days=5)
    services.expire_due_credits()
    expired = Notification.objects.get(kind=NotificationKind.CREDITS_EXPIRED)
    assert (expired.recipient, expired.email_to) == (None, "billing@acme.example")
    assert expired.body.startswith("10 credits in Acme Ltd's balance expired")


def test_the_adjust_dialog_and_profile_say_who_is_told(acme, client, adjuster):
    page = client.get(f"/customers/companies/{acme.pk}/adjust/").content.decode()
    assert "Nobody will be notified" not in page
    profile = client.get(f"/customers/companies/{acme.pk}/").content.decode()
    assert "Its billing email, billing@acme.example, as it has no active manager" in profile
