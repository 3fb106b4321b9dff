"""Every write of notifications, and the delivery of their emails.

The ledger services call `notify_adjustment` and `notify_expiration` inside their own
database transaction, right after the ledger row is written, so notifications commit or
roll back with the change they describe. The emails are handed to Celery only after
commit; `deliver_email` is idempotent (an advisory lock per notification, then its
status), so a task delivered twice, or re-sent by the periodic sweep, sends one email.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache, partial
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from credits.models import CreditAccount, CreditLot, CreditTransaction
from customers.models import CompanyMembership, User, customer_kind
from spacecredits.db import server_bound_cursor
from spacecredits.formats import format_credits
from spacecredits.validators import one_line

from .models import EmailStatus, Notification, NotificationKind, NotificationPreferences

logger = logging.getLogger(__name__)

REMINDER_DAYS = 7
# Delivery: attempts per notification in all, and the backoff between them. The longest
# countdown stays far below the broker's visibility timeout (settings:
# CELERY_BROKER_TRANSPORT_OPTIONS), or Redis would hand a waiting retry to a second worker.
MAX_EMAIL_ATTEMPTS = 6
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 300
# The sweep re-sends what is still pending after this long: longer than all retries take.
RESEND_PENDING_AFTER = dt.timedelta(minutes=15)

PREFERENCE_FOR_KIND = {
    NotificationKind.CREDITS_ADDED: "email_credit_updates",
    NotificationKind.CREDITS_DEDUCTED: "email_credit_updates",
    NotificationKind.CREDITS_EXPIRING: "email_expiry_reminders",
    NotificationKind.CREDITS_EXPIRED: "email_expiry_reminders",
}


# --- Words ------------------------------------------------------------------------------


def format_date(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def _verb(amount: Decimal, singular: str, plural: str) -> str:
    return singular if abs(amount) == 1 else plural


def _balance_name(customer, recipient: User) -> str:
    """'your balance' for a personal balance, "Acme Ltd's balance" for a company's."""
    return "your balance" if customer == recipient else f"{customer.name}'s balance"


def transactions_link(customer) -> str:
    """The path where a member reads this customer's transactions (member side)."""
    before, after = _transactions_link_around_id(customer_kind(customer), get_script_prefix())
    return f"{before}{customer.pk}{after}"


_ID_PLACEHOLDER = 918273645546372819


@lru_cache(maxsize=16)
def _transactions_link_around_id(kind: str, script_prefix: str) -> tuple[str, str]:
    """The member transactions path, reversed once per kind and split around the id:
    adjustments and the expiry sweep build it for every notification, and reverse()
    cost a quarter of an adjustment's Python time."""
    before, after = reverse(f"member:{kind}-transactions", args=[_ID_PLACEHOLDER]).split(
        str(_ID_PLACEHOLDER)
    )
    return before, after


def recipients_of(customer) -> list[User]:
    """Who is told about a customer's credits: the user, or the company's managers."""
    if isinstance(customer, User):
        return [customer] if customer.is_active else []
    return list(
        User.objects.filter(
            is_active=True,
            memberships__company=customer,
            memberships__role=CompanyMembership.Role.MANAGER,
        ).order_by("pk")
    )


def _adjustment_words(
    customer, recipient, amount: Decimal, expires_on: dt.date | None, memo: str
) -> tuple[str, str]:
    """Subject and body about an adjustment of `amount` (signed), for `recipient`."""
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    if amount > 0:
        subject = f"{credits} added to {where}"
        body = f"{credits} {_verb(amount, 'was', 'were')} added to {where}."
        if expires_on is None:
            body += f" {_verb(amount, 'It never expires', 'They never expire')}."
        else:
            body += f" {_verb(amount, 'It expires', 'They expire')} on {format_date(expires_on)}."
    else:
        subject = f"{credits} deducted from {where}"
        body = f"{credits} {_verb(amount, 'was', 'were')} deducted from {where}."
    if memo:
        body += f" Memo: {memo}"
    return subject[:1].upper() + subject[1:], body


# --- Writing notifications (inside the ledger's transaction) ----------------------------


def _email_wanted(recipients: list[User], kind: str) -> dict[int, bool]:
    if not recipients:
        return {}
    field = PREFERENCE_FOR_KIND[kind]
    turned_off = set(
        NotificationPreferences.objects.filter(
            user__in=[r.pk for r in recipients], **{field: False}
        ).values_list("user_id", flat=True)
    )
    return {r.pk: r.pk not in turned_off for r in recipients}


# The columns a new notification fills; the others start empty (read_at, emailed_at).
_INSERTED = {
    "recipient_id": "bigint",
    "kind": "varchar",
    "subject": "varchar",
    "body": "text",
    "link": "varchar",
    "balance_after": "numeric",
    "transaction_id": "bigint",
    "lot_id": "bigint",
    "created_at": "timestamptz",
    "email_status": "varchar",
    "email_attempts": "smallint",
    "email_error": "text",
}
# Built from the constants above only.
_COLUMNS = ", ".join(_INSERTED)
_ARRAYS = ", ".join(f"%b::{kind}[]" for kind in _INSERTED.values())
_INSERT_FROM_ARRAYS_SQL = (
    f"INSERT INTO notifications_notification ({_COLUMNS}) "  # noqa: S608
    f"SELECT * FROM unnest({_ARRAYS}) RETURNING id, email_status"
)


def _insert(notifications: list[Notification]) -> None:
    """bulk_create, through _insert_columns."""
    for row in notifications:
        row.email_attempts = row.email_attempts or 0
        row.email_error = row.email_error or ""

    def plain(value):  # choices are str enums: pass their plain values
        return str(value) if isinstance(value, str) else value

    columns = {name: [plain(getattr(row, name)) for row in notifications] for name in _INSERTED}
    for row, (pk, _) in zip(notifications, _insert_columns(columns), strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = connection.alias


def _insert_columns(columns: dict[str, list]) -> list[tuple[int, str]]:
    """Insert notifications given as one list per column of _INSERTED, as one
    INSERT from one binary array per column: the expiry sweep writes tens of thousands of
    rows at once, and Django preparing each value of each row, or quoting it into the SQL,
    cost more than the database storing them. Returns (id, email_status) per row, in order."""
    with server_bound_cursor() as cursor:  # the arrays travel in binary
        cursor.execute(_INSERT_FROM_ARRAYS_SQL, [columns[name] for name in _INSERTED])
        return cursor.fetchall()


def _write(notifications: list[Notification]) -> list[Notification]:
    """Insert the rows and queue their emails for after the surrounding commit."""
    _insert(notifications)
    pending = [n.pk for n in notifications if n.email_status == EmailStatus.PENDING]
    queue_emails_after_commit(pending)
    return notifications


def queue_emails_after_commit(notification_ids: list[int]) -> None:
    """Hand these notifications' emails to Celery once the surrounding transaction commits
    (at once, outside a transaction)."""
    if notification_ids:
        # Whatever goes wrong in queueing (the broker is down, say), the adjustment has
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


def _notifications_for(customer, kind, words, **fields) -> list[Notification]:
    recipients = recipients_of(customer)
    wanted = _email_wanted(recipients, kind)
    now = timezone.now()
    rows = []
    for recipient in recipients:
        subject, body = words(recipient)
        rows.append(
            Notification(
                recipient=recipient,
                kind=kind,
                subject=subject[:200],
                body=body,
                link=transactions_link(customer),
                created_at=now,
                email_status=EmailStatus.PENDING if wanted[recipient.pk] else EmailStatus.OFF,
                **fields,
            )
        )
    return rows


@dataclass(frozen=True)
class AdjustmentNotices:
    """The notifications an adjustment will write, ready before it is recorded: on
    PostgreSQL the ledger's database function stores them with the ledger row."""

    kind: str
    recipient_ids: list[int]
    subjects: list[str]
    bodies: list[str]
    link: str


def adjustment_notices(
    customer, amount: Decimal, expires_on: dt.date | None, memo: str
) -> AdjustmentNotices:
    """What notify_adjustment writes about an adjustment of `amount` (signed), minus the
    transaction, the balance and the email choice, which the database fills in."""
    recipients = recipients_of(customer)
    words = [_adjustment_words(customer, r, amount, expires_on, memo) for r in recipients]
    return AdjustmentNotices(
        kind=_adjustment_kind(amount),
        recipient_ids=[r.pk for r in recipients],
        subjects=[subject[:200] for subject, _ in words],
        bodies=[body for _, body in words],
        link=transactions_link(customer),
    )


def _adjustment_kind(amount: Decimal) -> str:
    return NotificationKind.CREDITS_ADDED if amount > 0 else NotificationKind.CREDITS_DEDUCTED


def notify_adjustment(customer, tx: CreditTransaction) -> list[Notification]:
    """Tell the customer's recipients about an addition or deduction just recorded.

    Call inside the transaction that wrote `tx`. Text as in SPEC.md, e.g. "25 credits
    were added to your balance. They never expire. Memo: Welcome bonus".
    """
    kind = _adjustment_kind(tx.amount)

    def words(recipient):
        return _adjustment_words(customer, recipient, tx.amount, tx.expires_on, tx.memo)

    return _write(
        _notifications_for(customer, kind, words, transaction=tx, balance_after=tx.balance_after)
    )


def _expiration_words(
    customer, recipient: User, amount: Decimal, balance_after: Decimal, expired_on: dt.date
) -> tuple[str, str]:
    """Subject and body about credits whose last day was `expired_on`."""
    where = _balance_name(customer, recipient)
    credits = format_credits(amount)
    subject = f"{credits} expired"
    body = (
        f"{credits} in {where} expired at the end of {format_date(expired_on)}."
        f" {'Your' if where == 'your balance' else 'The'} balance is now"
        f" {format_credits(balance_after)}."
    )
    return subject, body


def notify_expiration(
    account: CreditAccount, tx: CreditTransaction, expired_on: dt.date
) -> list[Notification]:
    """Tell the recipients that credits expired (`tx` is the expiration just written of
    the credits whose last day was `expired_on`)."""
    customer = account.customer

    def words(recipient):
        return _expiration_words(customer, recipient, tx.amount, tx.balance_after, expired_on)

    return _write(
        _notifications_for(
            customer,
            NotificationKind.CREDITS_EXPIRED,
            words,
            transaction=tx,
            balance_after=tx.balance_after,
        )
    )


@dataclass(frozen=True)
class Expiration:
    """An `expiration` transaction just written by the sweep: the fields its notices use."""

    account: CreditAccount
    transaction_id: int
    amount: Decimal
    balance_after: Decimal
    expired_on: dt.date  # the credits' last day


def notify_expirations(expirations: list[Expiration]) -> None:
    """notify_expiration for many expirations at once (the expiry sweep):
    the same rows, in a fixed number of queries however many customers there are."""
    if not expirations:
        return
    customers = {e.account.pk: e.account.customer for e in expirations}
    company_ids = [c.pk for c in customers.values() if not isinstance(c, User)]
    managers: dict[int, list[User]] = {pk: [] for pk in company_ids}
    memberships = CompanyMembership.objects.filter(
        company_id__in=company_ids, role=CompanyMembership.Role.MANAGER, user__is_active=True
    ).select_related("user")
    for membership in memberships.order_by("user_id"):
        managers[membership.company_id].append(membership.user)
    recipients = {
        pk: ([customer] if customer.is_active else [])
        if isinstance(customer, User)
        else managers[customer.pk]
        for pk, customer in customers.items()
    }
    everyone = list({user.pk: user for users in recipients.values() for user in users}.values())
    wanted = _email_wanted(everyone, NotificationKind.CREDITS_EXPIRED)
    status = {True: EmailStatus.PENDING.value, False: EmailStatus.OFF.value}
    now = timezone.now()
    links = {pk: transactions_link(customer) for pk, customer in customers.items()}
    columns = {name: [] for name in _INSERTED}
    for expiration in expirations:
        customer, link = customers[expiration.account.pk], links[expiration.account.pk]
        for recipient in recipients[expiration.account.pk]:
            subject, body = _expiration_words(
                customer,
                recipient,
                expiration.amount,
                expiration.balance_after,
                expiration.expired_on,
            )
            for name, value in (
                ("recipient_id", recipient.pk),
                ("subject", subject[:200]),
                ("body", body),
                ("link", link),
                ("balance_after", expiration.balance_after),
                ("transaction_id", expiration.transaction_id),
                ("email_status", status[wanted[recipient.pk]]),
            ):
                columns[name].append(value)
    rows = len(columns["recipient_id"])
    columns.update(
        kind=[NotificationKind.CREDITS_EXPIRED.value] * rows,
        lot_id=[None] * rows,
        created_at=[now] * rows,
        email_attempts=[0] * rows,
        email_error=[""] * rows,
    )
    written = _insert_columns(columns)
    queue_emails_after_commit([pk for pk, email in written if email == EmailStatus.PENDING])


def _reminder_words(customer, lot: CreditLot, recipient: User) -> tuple[str, str]:
    amount = format_credits(lot.remaining)
    verb = _verb(lot.remaining, "expires", "expire")
    when = format_date(lot.expires_on)
    where = _balance_name(customer, recipient)
    return f"{amount} {verb} on {when}", f"{amount} in {where} {verb} on {when}."


def send_expiry_reminders() -> int:
    """Remind recipients, once per lot, of credits that expire within 7 days.

    A lot gets its reminder on the first run that finds it within REMINDER_DAYS of its
    expiration with credits left; a unique constraint keeps it from getting a second one.
    Returns the number of notifications written.
    """
    today = timezone.localdate(timezone.now())
    lots = CreditLot.objects.filter(
        remaining__gt=0,
        expires_on__gte=today,
        expires_on__lte=today + dt.timedelta(days=REMINDER_DAYS),
    ).exclude(notifications__kind=NotificationKind.CREDITS_EXPIRING)
    account_ids = sorted(set(lots.values_list("account_id", flat=True)))
    written = 0
    for account_id in account_ids:
        with transaction.atomic():
            # Under the account lock no deduction runs, so `remaining` is what it says.
            account = (
                CreditAccount.objects.select_for_update(of=("self",))
                .select_related("user", "company")
                .get(pk=account_id)
            )
            customer = account.customer
            rows = []
            for lot in lots.filter(account=account).order_by("expires_on", "created_at", "id"):
                words = partial(_reminder_words, customer, lot)
                rows += _notifications_for(
                    customer, NotificationKind.CREDITS_EXPIRING, words, lot=lot
                )
            written += len(_write(rows))
    return written


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
