import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from credits import notices, services
from credits.exceptions import InsufficientCredits
from notifications import delivery
from notifications import services as notifications
from notifications.models import EmailStatus, Notification, NotificationKind
from tests.factories import CompanyFactory, MembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_tasks")]


def test_an_addition_tells_the_user_in_app_and_by_one_email(
    django_capture_on_commit_callbacks, mailoutbox
):
    member = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.add_credits(member, 25, memo="Welcome bonus")

    notification = Notification.objects.get()
    assert notification.recipient == member
    assert notification.kind == NotificationKind.CREDITS_ADDED
    assert notification.body == (
        "25 credits were added to your balance. They never expire. Memo: Welcome bonus"
    )
    link = f"/membership/users/{member.pk}/transactions/"
    assert notification.link == link
    assert notification.read_at is None
    assert notification.email_status == EmailStatus.SENT
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [member.email]
    assert email.extra_headers["Message-ID"] == notifications.email_message_id(notification.pk)
    assert "25 credits were added to your balance" in email.body
    assert "Balance now: 25 credits" in email.body
    assert f"http://127.0.0.1:8000{link}" in email.body
    html = email.alternatives[0][0]
    assert "Welcome bonus" in html and f'href="http://127.0.0.1:8000{link}"' in html


def test_an_addition_that_expires_says_when(django_capture_on_commit_callbacks, clock):
    member = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.add_credits(member, Decimal("2.50"), expires_on=dt.date(2026, 12, 31))
    assert Notification.objects.get().body == (
        "2.50 credits were added to your balance. They expire on 31 Dec 2026."
    )


def test_a_company_deduction_tells_each_manager_not_plain_members(
    django_capture_on_commit_callbacks, mailoutbox
):
    acme = CompanyFactory(name="Acme Ltd")
    managers = [MembershipFactory(company=acme, role="manager").user for _ in range(2)]
    MembershipFactory(company=acme, role="member")
    services.add_credits(acme, 20)  # Not captured: only the deduction's emails are counted.
    Notification.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        services.deduct_credits(acme, 5)

    notices = Notification.objects.order_by("recipient_id")
    assert [n.recipient for n in notices] == sorted(managers, key=lambda u: u.pk)
    assert {n.body for n in notices} == {"5 credits were deducted from Acme Ltd's balance."}
    assert {n.balance_after for n in notices} == {Decimal("15.00")}
    assert {n.link for n in notices} == {f"/membership/companies/{acme.pk}/transactions/"}
    assert sorted(m.to[0] for m in mailoutbox) == sorted(u.email for u in managers)


def test_turning_off_credit_update_emails_keeps_the_in_app_notification(
    django_capture_on_commit_callbacks, mailoutbox
):
    member = UserFactory()
    notifications.update_preferences(member, email_credit_updates=False)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.add_credits(member, 5)
    notification = Notification.objects.get()
    assert notification.email_status == EmailStatus.OFF
    assert mailoutbox == []
    assert callbacks == []


def test_a_rolled_back_adjustment_leaves_no_notification(
    django_capture_on_commit_callbacks, mailoutbox
):
    member = UserFactory()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.add_credits(member, 5)
            raise RuntimeError("the caller's transaction fails after the adjustment")
        with pytest.raises(InsufficientCredits):
            services.deduct_credits(member, 1)
    assert Notification.objects.count() == 0
    assert callbacks == []
    assert mailoutbox == []


def test_the_email_task_is_queued_only_after_commit(django_capture_on_commit_callbacks, mailoutbox):
    member = UserFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.add_credits(member, 5)
        # Inside the transaction: the notification exists, nothing is queued or sent.
        assert Notification.objects.get().email_status == EmailStatus.PENDING
        assert mailoutbox == []
    assert len(callbacks) == 1 and mailoutbox == []

    callbacks[0]()  # The commit happens: now the task runs.
    assert len(mailoutbox) == 1
    assert Notification.objects.get().email_status == EmailStatus.SENT


def test_a_replayed_adjustment_notifies_once(django_capture_on_commit_callbacks, mailoutbox):
    member = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.add_credits(member, 5, idempotency_key="form-token-1")
        services.add_credits(member, 5, idempotency_key="form-token-1")
    assert Notification.objects.count() == 1
    assert len(mailoutbox) == 1


def test_delivering_twice_sends_one_email(django_capture_on_commit_callbacks, mailoutbox):
    member = UserFactory()
    services.add_credits(member, 5)  # Callbacks not run: the email is still pending.
    notification = Notification.objects.get()

    assert notifications.deliver_email(notification.pk) == (EmailStatus.SENT, "")
    assert notifications.deliver_email(notification.pk) == (EmailStatus.SENT, "")
    assert len(mailoutbox) == 1


def test_failed_sends_retry_then_end_failed_with_the_error_kept(unreachable_smtp):
    member = UserFactory()
    services.add_credits(member, 5)
    notification = Notification.objects.get()

    for _ in range(1, notifications.MAX_EMAIL_ATTEMPTS):
        status, error = notifications.deliver_email(notification.pk)
        assert status == EmailStatus.PENDING and "refused" in error.lower()
    assert [notifications.retry_countdown(n) for n in range(1, 7)] == [10, 20, 40, 80, 160, 300]

    status, error = notifications.deliver_email(notification.pk)
    notification.refresh_from_db()
    assert status == notification.email_status == EmailStatus.FAILED
    assert notification.email_attempts == notifications.MAX_EMAIL_ATTEMPTS
    assert "ConnectionRefusedError" in notification.email_error


def test_a_written_email_is_due_at_once_and_the_relays_poll_sends_what_is_due(clock, mailoutbox):
    """The relay's periodic look (delivery.relay_due, every few seconds) is the sweep: it
    sends what is due, leaves a leased row alone until its lease ends, then sends it."""
    member = UserFactory()
    services.add_credits(member, 5)  # Not after commit here (a test transaction): pending.
    services.add_credits(member, 6)
    five, six = Notification.objects.order_by("pk")
    assert five.email_status == EmailStatus.PENDING and five.next_attempt_at == clock.now
    # A relay claimed `six` (its lease runs) and then crashed.
    assert delivery.claim(notifications.EMAIL, limit=1) == [five.pk]
    Notification.objects.filter(pk=five.pk).update(next_attempt_at=clock.now)
    Notification.objects.filter(pk=six.pk).update(next_attempt_at=clock.now + delivery.LEASE)

    assert delivery.relay_due() == 1
    assert [m.subject for m in mailoutbox] == ["5 credits added to your balance"]
    five.refresh_from_db()
    assert five.email_status == EmailStatus.SENT and five.next_attempt_at is None
    assert delivery.relay_due() == 0
    clock.advance(seconds=delivery.LEASE.total_seconds())
    assert delivery.relay_due() == 1
    assert len(mailoutbox) == 2
    assert delivery.relay_due() == 0


def test_a_failed_attempt_is_due_again_after_the_backoff_and_send_again_is_due_now(
    clock, unreachable_smtp, settings
):
    settings.NOTIFICATION_RETRY_BASE_SECONDS = 10
    member = UserFactory()
    services.add_credits(member, 5)
    notification = Notification.objects.get()
    for attempt, wait in enumerate([10, 20, 40, 80, 160], start=1):
        assert delivery.relay_due() == 1
        notification.refresh_from_db()
        assert notification.email_attempts == attempt
        assert notification.next_attempt_at == clock.now + dt.timedelta(seconds=wait)
        clock.advance(seconds=wait - 1)
        assert delivery.relay_due() == 0
        clock.advance(seconds=1)
    assert delivery.relay_due() == 1
    notification.refresh_from_db()
    assert notification.email_status == EmailStatus.FAILED
    assert notification.next_attempt_at is None

    assert notifications.retry_failed_emails([notification.pk]) == 1
    notification.refresh_from_db()
    assert (notification.email_status, notification.email_attempts) == (EmailStatus.PENDING, 0)
    assert notification.next_attempt_at == clock.now


def test_expiry_reminder_once_per_lot_seven_days_before(
    clock, mailoutbox, django_capture_on_commit_callbacks
):
    member = UserFactory()
    services.add_credits(member, 10, expires_on=dt.date(2026, 6, 20))
    services.add_credits(member, 3, expires_on=dt.date(2026, 6, 20))
    services.add_credits(member, 7)  # Never expires: never reminded.
    services.add_credits(member, 4, expires_on=dt.date(2026, 6, 19))
    services.deduct_credits(member, 4)  # Takes the 19 Jun lot: nothing left to remind of.
    # Their emails stay out of the count (the relay would send every due one).
    Notification.objects.update(email_status=EmailStatus.SENT, next_attempt_at=None)

    def reminders():
        return Notification.objects.filter(kind=NotificationKind.CREDITS_EXPIRING)

    clock.set_local(2026, 6, 12, 9)  # 8 days before.
    assert notices.send_expiry_reminders() == 0
    clock.set_local(2026, 6, 13, 9)  # 7 days before.
    with django_capture_on_commit_callbacks(execute=True):
        assert notices.send_expiry_reminders() == 2
    assert sorted(reminders().values_list("body", flat=True)) == [
        "10 credits in your balance expire on 20 Jun 2026.",
        "3 credits in your balance expire on 20 Jun 2026.",
    ]
    assert sorted(m.subject for m in mailoutbox) == [
        "10 credits expire on 20 Jun 2026",
        "3 credits expire on 20 Jun 2026",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert notices.send_expiry_reminders() == 0
        clock.set_local(2026, 6, 18, 9)
        assert notices.send_expiry_reminders() == 0
    assert reminders().count() == 2
    assert len(mailoutbox) == 2


def test_expired_credits_are_told_once_by_the_sweep(clock, mailoutbox):
    acme = CompanyFactory(name="Acme Ltd")
    manager = MembershipFactory(company=acme, role="manager").user
    services.add_credits(acme, 10, expires_on=dt.date(2026, 6, 20))
    services.add_credits(acme, 1)
    Notification.objects.all().delete()

    clock.set_local(2026, 6, 21, 3)
    assert services.expire_due_credits() == 1
    notice = Notification.objects.get()
    assert notice.recipient == manager
    assert notice.kind == NotificationKind.CREDITS_EXPIRED
    assert notice.body == (
        "10 credits in Acme Ltd's balance expired at the end of 20 Jun 2026."
        " The balance is now 1 credit."
    )
    assert services.expire_due_credits() == 0
    assert Notification.objects.count() == 1


def test_an_adjustment_that_writes_due_expirations_tells_of_them_too(clock):
    member = UserFactory()
    services.add_credits(member, 10, expires_on=dt.date(2026, 6, 20))
    clock.set_local(2026, 6, 22)
    services.add_credits(member, 5, memo="Top-up")
    assert list(Notification.objects.order_by("id").values_list("body", flat=True)) == [
        "10 credits were added to your balance. They expire on 20 Jun 2026.",
        "10 credits in your balance expired at the end of 20 Jun 2026."
        " Your balance is now 0 credits.",
        "5 credits were added to your balance. They never expire. Memo: Top-up",
    ]


def test_inactive_users_are_not_told():
    member = UserFactory(is_active=False)
    services.add_credits(member, 5)
    assert Notification.objects.count() == 0


def test_every_beat_entry_names_a_registered_task():
    from django.conf import settings

    from spacecredits.celery import app

    app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"credits.tasks.expire_due_credits", "credits.tasks.send_expiry_reminders"} <= names
    assert names <= set(app.tasks)
