"""What the verbs tell, and whom: a company with no active manager is told by its billing
email, like an adjustment; a hold's capture, release and expiry say what happened."""

import datetime as dt

import pytest
from django.utils import timezone

from credits import services
from notifications.models import EmailStatus, Notification, NotificationKind
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

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
        "3 credits used from Acme Ltd's balance",
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


# --- What a hold's end says -----------------------------------------------------------


def told(member, reference):
    notice = Notification.objects.get(recipient=member, reference=reference)
    return notice.subject, notice.body


def test_a_capture_says_what_the_credits_were_used_for_and_what_is_free_again(clock):
    member = UserFactory()
    services.add_credits(member, 20)
    room = services.hold_credits(
        member, 15, expires_at=local(2026, 6, 2), memo="Meeting room, 10:00–11:00"
    )
    booking = services.capture_hold(room, 12)
    assert told(member, f"transaction:{booking.pk}") == (
        "12 credits used from your balance",
        "12 credits held in your balance were used for Meeting room, 10:00–11:00;"
        " the other 3 credits held are available again.",
    )
    desk = services.hold_credits(member, 5, expires_at=local(2026, 6, 2), memo="Desk 3")
    booking = services.capture_hold(desk, memo="Desk 3, 2 hours")
    assert told(member, f"transaction:{booking.pk}")[1] == (
        "5 credits held in your balance were used for Desk 3. Memo: Desk 3, 2 hours"
    )
    booking = services.capture_hold(services.hold_credits(member, 1, expires_at=local(2026, 6, 2)))
    assert told(member, f"transaction:{booking.pk}")[1] == (
        "1 credit held in your balance was used for a booking."
    )


def test_a_capture_says_what_of_the_rest_expired_as_its_day_had_passed(clock):
    member = UserFactory()
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 3))
    services.add_credits(member, 2)
    hold = services.hold_credits(member, 5, expires_at=local(2026, 6, 10), memo="Desk 3")
    clock.set_local(2026, 6, 5)  # the dated lot's day passed while 4 of it were held
    booking = services.capture_hold(hold, 1)
    assert told(member, f"transaction:{booking.pk}")[1] == (
        "1 credit held in your balance was used for Desk 3; the other 4 credits held:"
        " 1 is available again, 3 expired, as their last day had passed."
    )


def test_a_release_and_a_hold_that_ends_unused_say_the_credits_are_available_again(clock):
    member = UserFactory()
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 3))
    services.add_credits(member, 10)
    desk = services.hold_credits(member, 7, expires_at=local(2026, 6, 2, 9), memo="Desk 3")
    services.release_hold(desk)
    assert told(member, f"hold-released:{desk.pk}") == (
        "7 credits released in your balance",
        "The hold of 7 credits for Desk 3 was released: they are available again in your balance.",
    )

    room = services.hold_credits(member, 5, expires_at=local(2026, 6, 5, 11))
    clock.set_local(2026, 6, 6)
    services.expire_due_credits()
    # 4 of it were in credits whose last day, 3 Jun, passed while held: they expired.
    subject, body = told(member, f"hold-released:{room.pk}")
    assert subject == "5 credits no longer held in your balance"
    assert body == (
        "The hold of 5 credits ended at 5 Jun 2026, 11:00 unused: 1 is available again in"
        " your balance, 4 expired, as their last day had passed."
    )
    assert Notification.objects.get(kind=NotificationKind.CREDITS_EXPIRED).subject == (
        "4 credits expired"
    )
    services.expire_due_credits()
    assert Notification.objects.filter(reference=f"hold-released:{room.pk}").count() == 1
