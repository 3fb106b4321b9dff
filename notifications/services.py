"""Every write of notifications, and the delivery of their emails.

Apps write notifications with `write` (or from their own SQL, through the same database
function) inside the transaction of the change they report, so notifications commit or
roll back with it. The emails are handed to Celery only after
commit; `deliver_email` is idempotent (an advisory lock per notification, then its
status), so a task delivered twice, or re-sent by the periodic sweep, sends one email.
"""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from kombu.exceptions import OperationalError

from customers.models import User
from spacecredits.db import server_bound_cursor
from spacecredits.formats import format_credits
from spacecredits.validators import one_line

from . import sql_files
from .models import EmailStatus, Notification, NotificationPreferences

logger = logging.getLogger(__name__)

# Delivery: attempts per notification in all, and the backoff between them. The longest
# countdown stays far below the broker's visibility timeout (settings:
# CELERY_BROKER_TRANSPORT_OPTIONS), or Redis would hand a waiting retry to a second worker.
MAX_EMAIL_ATTEMPTS = 6
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 300
# The sweep re-sends what is still pending after this long: longer than all retries take.
RESEND_PENDING_AFTER = dt.timedelta(minutes=15)

# --- Writing notifications (inside the transaction of the change they report) ----------


class Rows:
    """Notifications to write, one list per column (the sweep writes tens of thousands at
    once: lists travel to PostgreSQL as binary arrays, cheaper than rows)."""

    def __init__(self):
        self.recipients, self.subjects, self.bodies = [], [], []
        self.links, self.balances, self.references = [], [], []

    def add(
        self,
        *,
        recipient: int,
        subject: str,
        body: str,
        link: str,
        reference: str,
        balance_after=None,
    ):
        self.recipients.append(recipient)
        self.subjects.append(subject)
        self.bodies.append(body)
        self.links.append(link)
        self.balances.append(balance_after)
        self.references.append(reference)

    def __len__(self):
        return len(self.recipients)


# The one writer of notifications (notifications/sql/write_notifications.sql).
WRITE_SQL = f"""
/* notifications/sql/write_notifications.sql {sql_files.version("write_notifications.sql")} */
SELECT written, emails FROM notifications_write(
    p_kind => %b::varchar, p_created_at => %b::timestamptz, p_recipients => %b::bigint[],
    p_subjects => %b::varchar[], p_bodies => %b::text[], p_links => %b::varchar[],
    p_balances => %b::numeric[], p_references => %b::varchar[])
"""  # noqa: S608 (the only value put in is the digest of our own file)


def write(kind: str, rows: Rows) -> int:
    """Write the notifications of one kind, dated now, and queue their emails for after the
    surrounding commit. A recipient told of a reference already is not told again.
    Returns the number written."""
    if not rows:
        return 0
    params = [
        str(kind),
        timezone.now(),
        rows.recipients,
        rows.subjects,
        rows.bodies,
        rows.links,
        rows.balances,
        rows.references,
    ]
    with server_bound_cursor() as cursor:  # the arrays travel in binary
        cursor.execute(WRITE_SQL, params)
        written, emails = cursor.fetchone()
    queue_emails_after_commit(emails)
    return written


def queue_emails_after_commit(notification_ids: list[int]) -> None:
    """Hand these notifications' emails to Celery once the surrounding transaction commits
    (at once, outside a transaction)."""
    if notification_ids:
        # Whatever goes wrong in queueing (the broker is down, say), the change has
        # committed and stands: the rows stay pending and the periodic sweep sends them.
        transaction.on_commit(lambda: _queue_emails(notification_ids), robust=True)


def _queue_emails(notification_ids: list[int]) -> None:
    from .tasks import send_notification_email

    for done, notification_id in enumerate(notification_ids):
        try:
            send_notification_email.delay(notification_id)
        except OperationalError as error:  # The broker is down: the rows stay pending.
            logger.warning(
                "Could not queue %s notification email(s) (%s: %s); the periodic sweep"
                " sends them once the broker is back.",
                len(notification_ids) - done,
                type(error).__name__,
                error,
            )
            return


# --- Reading state ----------------------------------------------------------------------


def mark_read(recipient: User, notification_ids=None) -> int:
    """Mark the recipient's notifications read (all unread ones when ids is None)."""
    unread = Notification.objects.filter(recipient=recipient, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


def update_preferences(user: User, **choices: bool) -> NotificationPreferences:
    preferences, _ = NotificationPreferences.objects.update_or_create(user=user, defaults=choices)
    return preferences


# --- Email delivery ---------------------------------------------------------------------


def retry_countdown(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 10, 20, 40, ... <= 300.

    NOTIFICATION_RETRY_BASE_SECONDS (setting) shortens the base for tests.
    """
    base = getattr(settings, "NOTIFICATION_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS)
    return min(base * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


def email_message_id(notification_id: int) -> str:
    """The Message-ID of a notification's email: the same on every try."""
    host = urlsplit(settings.SITE_URL).hostname or "spacecredits"
    return f"<notification-{notification_id}@{host}>"


def build_email(notification: Notification) -> EmailMultiAlternatives:
    context = {
        "notification": notification,
        "url": settings.SITE_URL + notification.link,
        "balance_after": (
            format_credits(notification.balance_after)
            if notification.balance_after is not None
            else None
        ),
        "preferences_url": settings.SITE_URL + "/notifications/preferences/",
    }
    text = render_to_string("notifications/email/notification.txt", context)
    html = render_to_string("notifications/email/notification.html", context)
    message = EmailMultiAlternatives(
        # One header line whatever the row holds (a name stored before names were
        # single-line): a line break would raise BadHeaderError on every try.
        subject=one_line(notification.subject),
        body=text,
        to=[notification.recipient.email],
        # The same Message-ID on every try lets a mail server or client drop a duplicate
        # in the one case we cannot rule out: SMTP accepted it and we crashed before commit.
        headers={"Message-ID": email_message_id(notification.pk)},
    )
    message.attach_alternative(html, "text/html")
    return message


def deliver_email(notification_id: int) -> tuple[str, str]:
    """Send one notification's email unless it was sent already. Returns (status, error).

    Deliveries of one notification run one at a time (_hold_delivery), so a second
    delivery of the same task (or the sweep) waits and then finds it sent. A failure
    counts an attempt and keeps the error; after MAX_EMAIL_ATTEMPTS it ends "failed" (the
    admin shows it). The status is "pending" with an error when the caller should try
    again later.
    """
    with transaction.atomic():
        _hold_delivery(notification_id)
        notification = (
            Notification.objects.select_related("recipient").filter(pk=notification_id).first()
        )
        if notification is None or notification.email_status != EmailStatus.PENDING:
            return (notification.email_status if notification else "missing"), ""
        try:
            with transaction.atomic():  # A database email sink's error rolls back only this.
                build_email(notification).send()
        except Exception as error:  # Any failure of the mail system counts.
            notification.email_attempts += 1
            notification.email_error = f"{type(error).__name__}: {error}"[:2000]
            if notification.email_attempts >= MAX_EMAIL_ATTEMPTS:
                notification.email_status = EmailStatus.FAILED
            logger.warning(
                "Email for notification %s failed (attempt %s): %s",
                notification_id,
                notification.email_attempts,
                notification.email_error,
            )
        else:
            notification.email_attempts += 1
            notification.email_status = EmailStatus.SENT
            notification.emailed_at = timezone.now()
            notification.email_error = ""
        notification.save(
            update_fields=["email_status", "email_attempts", "email_error", "emailed_at"]
        )
        return notification.email_status, notification.email_error


# The advisory locks' first key: deliveries of notification emails.
DELIVERY_LOCK_SPACE = 0x5C0E


def _hold_delivery(notification_id: int) -> None:
    """Until the transaction ends, no other delivery of this notification runs.

    A transaction-scoped advisory lock, not the row's lock: a mail server may take up to
    EMAIL_TIMEOUT to answer, and meanwhile the member marking the notification read must
    not wait. (Two ids that share the lock's second key, ids 2**31 - 1 apart, only wait
    for each other.)
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, (%s %% 2147483647)::integer)",
            [DELIVERY_LOCK_SPACE, notification_id],
        )


def pending_retry_countdown(notification_id: int) -> float:
    attempts = (
        Notification.objects.filter(pk=notification_id)
        .values_list("email_attempts", flat=True)
        .first()
    )
    return retry_countdown(attempts or 1)


def resend_pending_emails(*, older_than: dt.timedelta = RESEND_PENDING_AFTER) -> int:
    """Queue again every email still pending after `older_than` (what a crash left).

    Safe to overlap with a live task for the same row: delivery is idempotent.
    """
    cutoff = timezone.now() - older_than
    ids = list(
        Notification.objects.filter(
            email_status=EmailStatus.PENDING, created_at__lte=cutoff
        ).values_list("pk", flat=True)
    )
    _queue_emails(ids)
    return len(ids)


def retry_failed_emails(notification_ids) -> int:
    """Staff's "send again" for failed emails: back to pending with fresh attempts."""
    ids = list(
        Notification.objects.filter(
            pk__in=notification_ids, email_status=EmailStatus.FAILED
        ).values_list("pk", flat=True)
    )
    Notification.objects.filter(pk__in=ids).update(
        email_status=EmailStatus.PENDING, email_attempts=0
    )
    transaction.on_commit(lambda: _queue_emails(ids), robust=True)
    return len(ids)
