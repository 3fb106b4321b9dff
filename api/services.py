"""Every write of the API's own rows: keys and the cleanup of idempotency records."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from customers.models import User
from spacecredits.validators import validate_single_line

from .models import ApiKey, IdempotencyRecord, Scope

KEY_PREFIX = "sck_"
# Staff see this many of the key's first characters: "sck_" and 8 random ones.
VISIBLE_PREFIX_LENGTH = 12
# The last-used time is written at most this often per key: one write per request would
# make every read a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# Idempotency records are kept at least this long (SPEC: at least 24 h).
IDEMPOTENCY_RETENTION = dt.timedelta(hours=25)


def hash_key(key: str) -> str:
    """HMAC-SHA256 of the key, keyed by API_KEY_SECRET (SECRET_KEY unless set). A key is 32
    random bytes, so no slow password hash is needed: nobody guesses 2**256 keys."""
    secret = settings.API_KEY_SECRET.encode()
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class NewKey:
    api_key: ApiKey
    key: str  # shown once, never stored


def create_api_key(*, name: str, scope: str, created_by: User | None = None) -> NewKey:
    """A new key with `name` and `scope` ("read" or "write"). The key itself is returned
    once, in NewKey.key; only its hash is kept."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationError({"name": "Give the key a name of 1 to 100 characters."})
    validate_single_line(name)
    if scope not in Scope.values:
        raise ValidationError({"scope": "Choose read or write."})
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name,
        scope=scope,
        prefix=key[:VISIBLE_PREFIX_LENGTH],
        hashed_key=hash_key(key),
        created_at=timezone.now(),
        created_by=created_by,
    )
    return NewKey(api_key=api_key, key=key)


def revoke_api_key(api_key: ApiKey) -> ApiKey:
    """Revoke the key from now on (its history keeps naming it). Revoking twice is a no-op."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=api_key.revoked_at
        )
    return api_key


def authenticate(key: str) -> ApiKey | None:
    """The active key `key` is, or None; notes when it was used (to the minute)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    api_key = ApiKey.objects.filter(hashed_key=hash_key(key), revoked_at__isnull=True).first()
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        api_key.last_used_at = now
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    return api_key


def delete_expired_idempotency_records() -> int:
    """Forget idempotency keys older than IDEMPOTENCY_RETENTION; returns how many."""
    cutoff = timezone.now() - IDEMPOTENCY_RETENTION
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
