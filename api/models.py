"""The public API's own rows: keys, what each key changed, and idempotency records.

The ledger is not changed for the API: a change made through a key is its ledger rows plus
an `ApiKeyChange` per row, written in the same database transaction (docs/api.md).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from credits.models import CreditHold, CreditTransaction


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

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "webhook endpoint"
        permissions = [("manage_webhooks", "Can register webhook endpoints and roll secrets")]

    def __str__(self):
        return self.url
