"""Every write of notifications, and the delivery of their emails.

Apps write notifications with `write` (or from their own SQL, through the same database
function) inside the transaction of the change they report, so notifications commit or
roll back with it. The rows are the outbox: the database function marks pending emails
due, and the relay, which looks for due rows every 0.1 s, hands them to Celery
(notifications/delivery.py). The email is one channel of that mechanism, registered at the
end of this module: its sender builds and sends the message, with the same Message-ID on
every try.
"""

from __future__ import annotations

import logging
from contextlib import closing
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.utils import timezone

from customers.models import User
from spacecredits.db import server_bound_cursor
from spacecredits.formats import format_credits
from spacecredits.validators import one_line

from . import delivery, sql_files
from .models import CapturedEmail, Notification, NotificationPreferences

logger = logging.getLogger(__name__)

# Delivery (notifications/delivery.py): attempts per notification in all.
MAX_EMAIL_ATTEMPTS = delivery.MAX_ATTEMPTS
retry_countdown = delivery.retry_countdown

# --- Writing notifications (inside the transaction of the change they report) ----------


class Rows:
    """Notifications to write, one list per column (the sweep writes tens of thousands at
    once: lists travel to PostgreSQL as binary arrays, cheaper than rows)."""

    def __init__(self):
        self.recipients, self.subjects, self.bodies = [], [], []
        self.links, self.balances, self.references = [], [], []
        self.addresses = []

    def add(
        self,
        *,
        recipient: int | None,
        subject: str,
        body: str,
        link: str,
        reference: str,
        balance_after=None,
        address: str = "",
    ):
        """A notice for `recipient` (a user's id), or, with recipient None, an email
        alone to `address`."""
        self.recipients.append(recipient)
        self.addresses.append(address if recipient is None else None)
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
    p_balances => %b::numeric[], p_references => %b::varchar[],
    p_addresses => %b::varchar[])
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
        rows.addresses,
    ]
    with server_bound_cursor() as cursor:  # the arrays travel in binary
        cursor.execute(WRITE_SQL, params)
        written, emails = cursor.fetchone()
    deliver_after_commit(emails)
    return written


def deliver_after_commit(notification_ids: list[int]) -> None:
    """The web request's part in sending the emails of notifications it wrote: none with a
    broker (the database function notified the relay, which hands them to Celery); without
    one (make demo, tests), the relay's code runs here after commit, tasks eagerly."""
    if notification_ids:
        delivery.relay_after_commit()


# --- Reading state ----------------------------------------------------------------------


def mark_read(recipient: User, notification_ids=None) -> int:
    """Mark the recipient's notifications read (all unread ones when ids is None)."""
    unread = Notification.objects.filter(recipient=recipient, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


def forget_recipient(user: User, email: str) -> None:
    """Delete what notifications keep of a person who is forgotten
    (customers.services.anonymise_user): their notifications (and so any email about
    them still waiting), their preferences, and captured emails to their address."""
    Notification.objects.filter(recipient=user).delete()
    NotificationPreferences.objects.filter(user=user).delete()
    CapturedEmail.objects.filter(to__iexact=email).delete()


def update_preferences(user: User, **choices: bool) -> NotificationPreferences:
    preferences, _ = NotificationPreferences.objects.update_or_create(user=user, defaults=choices)
    return preferences


# --- Email delivery ---------------------------------------------------------------------


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
        to=[notification.recipient.email if notification.recipient else notification.email_to],
        # The same Message-ID on every try lets a mail server or client drop a duplicate
        # in the one case we cannot rule out: SMTP accepted it and we crashed before commit.
        headers={"Message-ID": email_message_id(notification.pk)},
    )
    message.attach_alternative(html, "text/html")
    return message


def deliver_email(notification_id: int) -> tuple[str, str]:
    """Send one notification's email unless it was sent already. Returns (status, error):
    "pending" with an error when it will be tried again (delivery.deliver)."""
    return delivery.deliver(EMAIL.name, [notification_id])[notification_id]


def retry_failed_emails(notification_ids) -> int:
    """Staff's "send again" for failed emails: back to pending with fresh attempts, due now."""
    return delivery.retry_failed(EMAIL.name, notification_ids)


def _load_notifications(notification_ids: list[int]):
    return Notification.objects.select_related("recipient").filter(pk__in=notification_ids)


def _mail_session():
    """One connection to the mail server for a batch, opened at its first message."""
    return closing(get_connection())


def _send_email(notification: Notification, mail_connection) -> None:
    try:
        mail_connection.open()  # once a batch: opened here, send_messages keeps it open
        mail_connection.send_messages([build_email(notification)])
    except Exception:
        mail_connection.close()  # the next message of the batch opens a fresh one
        raise


# The advisory locks' first key: deliveries of notification emails.
DELIVERY_LOCK_SPACE = 0x5C0E

EMAIL = delivery.register(
    delivery.Channel(
        name="email",
        model=Notification,
        load=_load_notifications,
        send=_send_email,
        session=_mail_session,
        lock_space=DELIVERY_LOCK_SPACE,
        status="email_status",
        attempts="email_attempts",
        error="email_error",
        sent_at="emailed_at",
        next_attempt_at="next_attempt_at",
        max_attempts=MAX_EMAIL_ATTEMPTS,
    )
)
