"""What members are told, and whether the email about it went out.

A `Notification` is written in the same database transaction as the change that causes it
(an outbox row): a committed adjustment always has its notifications, a rolled back one
has none. Every row is written by one function, `notifications_write`
(notifications/sql/write_notifications.sql), which apps call through
`services.write` or from their own SQL; this app knows nothing of what the notices are
about beyond their `reference`. Its `email_status` is the state of the email about it;
delivery moves it from pending to sent (or failed) exactly once.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class NotificationKind(models.TextChoices):
    CREDITS_ADDED = "credits_added", "Credits added"
    CREDITS_DEDUCTED = "credits_deducted", "Credits deducted"
    CREDITS_EXPIRING = "credits_expiring", "Credits expire soon"
    CREDITS_EXPIRED = "credits_expired", "Credits expired"
    CREDITS_HELD = "credits_held", "Credits held or released"
    WEBHOOK_SWITCHED_OFF = "webhook_switched_off", "Webhook endpoint switched off"


class EmailStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    OFF = "off", "Not sent (turned off)"


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,  # notification_inbox (recipient, created_at, id) serves every lookup
        help_text="Empty for an email to an address alone (email_to).",
    )
    # A notice with no recipient is an email alone, to this address: a company's billing
    # email, told when the company has no active manager (credits.notices).
    email_to = models.EmailField(blank=True)
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    link = models.CharField(max_length=300, help_text="Path of the transactions page.")
    balance_after = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    reference = models.CharField(
        max_length=64,
        blank=True,
        help_text="What the notice is about, e.g. 'transaction:42'; told once per recipient.",
    )
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    email_status = models.CharField(
        max_length=16, choices=EmailStatus.choices, default=EmailStatus.PENDING
    )
    email_attempts = models.PositiveSmallIntegerField(default=0)
    email_error = models.TextField(blank=True, help_text="The last delivery error.")
    emailed_at = models.DateTimeField(null=True, blank=True)
    # When the relay next hands the email to Celery (notifications/delivery.py): the
    # creation time, then a lease's end while a delivery runs, then the backoff's after a
    # failed try; empty once it is sent, failed or off.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One notice per recipient and reference (a ledger row, a lot's reminder): a
            # task that runs twice cannot tell anyone twice. It also finds the reminders
            # already sent.
            models.UniqueConstraint(
                fields=["recipient", "reference"],
                condition=Q(reference__gt=""),
                name="notification_once_per_reference",
            ),
            models.UniqueConstraint(
                fields=["email_to", "reference"],
                condition=Q(recipient__isnull=True, reference__gt=""),
                name="notification_address_once_per_reference",
            ),
            models.CheckConstraint(
                condition=Q(recipient__isnull=False) | Q(email_to__gt=""),
                name="notification_recipient_or_address",
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_inbox"),
            models.Index(
                fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
            # The relay's question, every few seconds: which pending emails are due?
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(email_status="pending"),
                name="notification_email_due",
            ),
            # The reminder job asks which lots already have their reminder; only reminders
            # are in this index, so adjustments and the sweep do not maintain it.
            models.Index(
                fields=["reference"],
                condition=Q(kind="credits_expiring"),
                name="notification_reminder",
            ),
        ]

    def __str__(self):
        return f"{self.subject} → {self.recipient or self.email_to}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None


class NotificationPreferences(models.Model):
    """A member's email choices; a member without a row has the defaults (all on)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
    )
    email_credit_updates = models.BooleanField(
        "Credit updates by admin",
        default=True,
        help_text="An email when credits are added to or deducted from a balance.",
    )
    email_expiry_reminders = models.BooleanField(
        "Expiry reminders",
        default=True,
        help_text="An email 7 days before credits expire, and when they have expired.",
    )

    class Meta:
        verbose_name_plural = "notification preferences"

    def __str__(self):
        return f"Notification preferences of {self.user}"


class CapturedEmail(models.Model):
    """An email kept by `notifications.backends.DatabaseEmailBackend` instead of sent.

    For demos and the tests with a real worker: the row is written in the same database
    transaction that marks the notification sent, so it is there exactly once.
    """

    to = models.TextField()
    subject = models.CharField(max_length=300)
    body = models.TextField()
    html = models.TextField(blank=True)
    message_id = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.subject} → {self.to}"
