"""Webhook endpoints: where they may point, their secrets, and how a message is signed.

Signing is the `standardwebhooks` library's (webhook-id, webhook-timestamp,
webhook-signature "v1,<base64 HMAC-SHA256>"), so any Standard Webhooks receiver verifies
it. Delivery is the webhook channel of notifications/delivery.py: api/webhook_delivery.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from customers.models import User

from .models import WebhookEndpoint, WebhookEvent

SECRET_PREFIX = "whsec_"
ROLLOVER = dt.timedelta(hours=24)
# Cloud metadata services live in the link-local range (169.254.169.254) or at these.
METADATA_ADDRESSES = {ipaddress.ip_address("fd00:ec2::254")}


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a webhook may not be sent to `address`, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_link_local or address in METADATA_ADDRESSES:
        return "a link-local or cloud metadata address"
    if settings.WEBHOOKS_ALLOW_PRIVATE:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_private or address.is_reserved or address.is_unspecified:
        return "a private or reserved address"
    if address.is_multicast:
        return "a multicast address"
    return None


def resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}, key=str)


def check_url(url: str) -> str:
    """`url` if a webhook may be sent there: http(s), a host that resolves, and none of its
    addresses link-local or metadata, nor (unless WEBHOOKS_ALLOW_PRIVATE) private or
    loopback. The sender checks the addresses again when it connects (a name can change
    what it points at)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Enter an http:// or https:// URL."})
    if parts.username or parts.password:
        raise ValidationError({"url": "Leave credentials out of the URL."})
    try:
        addresses = resolve(parts.hostname)
    except (socket.gaierror, UnicodeError, ValueError):
        raise ValidationError({"url": f"{parts.hostname} does not resolve."})
    for address in addresses:
        if reason := _refused(address):
            raise ValidationError({"url": f"{parts.hostname} is {reason} ({address})."})
    return url


def clean_events(events) -> list[str]:
    chosen = sorted({event.strip() for event in events if event.strip()})
    unknown = [event for event in chosen if event not in WebhookEvent.values]
    if not chosen or unknown:
        raise ValidationError(
            {"events": "Choose events among " + ", ".join(WebhookEvent.values) + "."}
        )
    return chosen


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str


def create_webhook_endpoint(url: str, *, events, created_by: User | None = None) -> NewEndpoint:
    """A new enabled endpoint; its secret is returned to be shown once."""
    endpoint = WebhookEndpoint.objects.create(
        url=check_url(url),
        events=clean_events(events),
        secret=new_secret(),
        created_at=timezone.now(),
        created_by=created_by,
    )
    return NewEndpoint(endpoint=endpoint, secret=endpoint.secret)


def roll_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing too for ROLLOVER."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_until = timezone.now() + ROLLOVER
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return endpoint.secret


def set_enabled(endpoint: WebhookEndpoint, enabled: bool) -> WebhookEndpoint:
    """Enable or disable; enabling starts its failing streak afresh (a switched-off
    endpoint is enabled again by staff once its receiver works)."""
    endpoint.enabled = enabled
    if enabled:
        endpoint.failing_since = endpoint.switched_off_at = None
    endpoint.save(update_fields=["enabled", "failing_since", "switched_off_at"])
    return endpoint


def signature_headers(
    endpoint: WebhookEndpoint, *, message_id: str, timestamp: dt.datetime, body: str
) -> dict[str, str]:
    """The Standard Webhooks headers for `body`; during a rollover signed with both
    secrets (space-separated signatures, as the standard allows)."""
    # In UTC: the library's sign() replaces the zone with UTC rather than converting, so a
    # time in another zone would be signed as another instant than the header says.
    timestamp = timestamp.astimezone(dt.UTC)
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until > timezone.now():
        keys.append(endpoint.previous_secret)
    signatures = [Webhook(key).sign(message_id, timestamp, body) for key in keys]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
