"""The public API's own rows: keys, what each key changed, and idempotency records.

The ledger is not changed for the API: a change made through a key is its ledger rows plus
an `ApiKeyChange` per row, written in the same database transaction (docs/api.md).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from credits.models import CreditHold, CreditTransaction
from notifications import delivery


class Scope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


class ApiKey(models.Model):
    """A secret a system presents as `Authorization: Bearer <key>`.

    Only a keyed hash of the key is stored (HMAC-SHA256, see api/keys.py): keys are long
    random strings, so a fast hash is as safe as a slow one and costs nothing per request.
    `prefix` is the key's first characters, shown to staff so a leaked key can be
    recognised.
    """

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    prefix = models.CharField(max_length=16)
    hashed_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        permissions = [("manage_api_keys", "Can create and revoke API keys")]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=["read", "write"]), name="api_key_scope"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiKeyChange(models.Model):
    """A ledger row written through an API key (shown in the history as "API: <name>")."""

    transaction = models.OneToOneField(
        CreditTransaction,
        primary_key=True,
        on_delete=models.PROTECT,
        related_name="api_change",
    )
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="changes")

    def __str__(self):
        return f"transaction {self.transaction_id} by API key {self.api_key_id}"


class ApiKeyHold(models.Model):
    """A hold made through an API key (a hold is no ledger row; its capture is, and that
    has its ApiKeyChange)."""

    hold = models.OneToOneField(
        CreditHold, primary_key=True, on_delete=models.PROTECT, related_name="api_change"
    )
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="holds")

    def __str__(self):
        return f"hold {self.hold_id} by API key {self.api_key_id}"


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` of one API key, and the response its first request got.

    The row is inserted first, in the transaction that makes the change, so a second
    request with the same key waits on the row's unique index until the first commits (it
    then replays the stored response) or rolls back (it then runs itself).
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path, body.")
    status_code = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=64, blank=True)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_key_per_api_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self):
        return self.key


class WebhookEvent(models.TextChoices):
    CREDIT_TRANSACTION_CREATED = "credit_transaction.created", "A ledger row is written"
    HOLD_CREATED = "hold.created", "A hold is made"
    HOLD_CAPTURED = "hold.captured", "A hold is captured"
    HOLD_RELEASED = "hold.released", "A hold is released"
    HOLD_EXPIRED = "hold.expired", "A hold expires"


class WebhookEndpoint(models.Model):
    """A URL that is sent the events it subscribes to, signed per Standard Webhooks.

    The signing secret is kept as it is (a receiver needs the same one to verify); after a
    roll the previous one also signs for 24 hours, so receivers can switch over.
    """

    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list, help_text="WebhookEvent values.")
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Since when every attempt has failed (empty after a success); an endpoint failing for
    # SWITCH_OFF_AFTER (3 days) is switched off and its owner told (api/webhooks.py).
    failing_since = models.DateTimeField(null=True, blank=True)
    switched_off_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was switched off for failing."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook endpoint"
        permissions = [("manage_webhooks", "Can register webhook endpoints and roll secrets")]

    def __str__(self):
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint: the webhook channel's row of notifications.delivery.

    Written by the triggers of api/sql/webhooks.sql in the transaction of the ledger row or
    hold it reports (the outbox), one per enabled endpoint that subscribes to the event.
    The relay hands out only the oldest pending delivery of each (endpoint, customer), so
    a customer's events reach an endpoint in commit order (docs/api.md, Webhooks).
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,  # webhook_delivery_recent (endpoint, -id) serves every lookup
        # No foreign key in the database: its check is a query and a KEY SHARE lock of the
        # endpoint's row per delivery, inside the ledger's transaction (every concurrent
        # change locking the same row). Endpoints are never deleted but by the ORM, which
        # cascades (docs/api.md, "What it costs the ledger").
        db_constraint=False,
    )
    event = models.CharField(max_length=40, choices=WebhookEvent.choices)
    object_id = models.BigIntegerField(help_text="The transaction's or the hold's id.")
    customer_key = models.BigIntegerField(
        help_text="The credit account whose event it is: deliveries of one account to one "
        "endpoint go out in order."
    )
    created_at = models.DateTimeField(help_text="When the event happened (the ledger's clock).")
    status = models.CharField(max_length=16, default="pending")
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, help_text="The last attempt's error.")
    sent_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    payload = models.TextField(
        blank=True, help_text="The body, as first sent: every retry sends the same bytes."
    )

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            # An event is delivered to an endpoint once: the triggers write it once.
            models.UniqueConstraint(
                fields=["endpoint", "event", "object_id"], name="webhook_delivery_once"
            ),
        ]
        indexes = [
            # The relay's question, every few seconds: which pending deliveries are due?
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
            # ... and is an earlier one of the same endpoint and customer still pending?
            models.Index(
                fields=["endpoint", "customer_key", "id"],
                condition=Q(status="pending"),
                name="webhook_delivery_queue",
            ),
            # The staff page: an endpoint's recent deliveries.
            models.Index(fields=["endpoint", "-id"], name="webhook_delivery_recent"),
        ]

    def __str__(self):
        return f"{self.event} {self.object_id} → {self.endpoint_id}"

    @property
    def can_send_again(self) -> bool:
        """Sent, or failed for good: staff may send it again (webhook_delivery.send_again)."""
        return self.status in delivery.DONE

    @property
    def webhook_id(self) -> str:
        """The `webhook-id` header: derived from the event, the same on every retry (and
        for every endpoint), so a receiver can drop a duplicate."""
        return f"msg_{self.event.replace('.', '_')}_{self.object_id}"


class WebhookAttempt(models.Model):
    """One try at a delivery, as staff see it: the answer, a little of its body, how long."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The HTTP status answered; empty when none came."
    )
    response_excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-attempted_at", "-id"]

    def __str__(self):
        return f"{self.delivery_id} at {self.attempted_at}: {self.status_code or self.error}"
