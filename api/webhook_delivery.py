"""The webhook channel of notifications/delivery.py: what a delivery sends, and how.

The rows (`WebhookDelivery`) are written by the triggers of api/sql/webhooks.sql in the
ledger's own transaction; the relay, the task, the leases, the attempts and "send again"
are the delivery mechanism's, the same as for emails. This module adds what is the
channel's own (docs/api.md, "Webhooks"):

- the body, `{"type", "timestamp", "data"}` with the transaction or hold as the API shows
  it, fixed at the first attempt so every retry sends the same bytes under the same
  `webhook-id`;
- the POST, signed per Standard Webhooks, with a timeout, to an address checked again
  when it connects (check_url's rules: a name may point elsewhere since it was
  registered), no redirects followed;
- the order: the relay claims only the oldest pending delivery of each (endpoint,
  customer), so a customer's events reach an endpoint in commit order; a delivery that
  failed for good stops holding the next ones back;
- the backoff, Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h:
  eight attempts over 27.6 hours), then failed;
- the switch-off: an endpoint whose every attempt has failed for SWITCH_OFF_AFTER is
  disabled, what it still had pending is failed (staff can send it again), and whoever
  registered it is told.
"""

from __future__ import annotations

import datetime as dt
import http.client
import logging
import socket
import time
from contextlib import nullcontext
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic_core import to_json

from credits.models import CreditHold
from notifications import delivery
from notifications import services as notifications
from notifications.models import NotificationKind
from spacecredits.formats import format_date

from . import schemas, selectors
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from .webhooks import _refused, resolve, signature_headers

logger = logging.getLogger(__name__)

# Standard Webhooks' retry schedule (seconds after each failed attempt); WEBHOOK_RETRY_SECONDS
# (setting) shortens it in tests. Eight attempts in all, over 27.6 hours.
RETRY_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_SECONDS) + 1
SWITCH_OFF_AFTER = dt.timedelta(days=3)
EXCERPT_CHARACTERS = 500
USER_AGENT = "SpaceCredits-Webhooks/1"
# The advisory locks' first key: deliveries of webhooks.
DELIVERY_LOCK_SPACE = 0x5C0F


def retry_countdown(attempts: int) -> float:
    schedule = getattr(settings, "WEBHOOK_RETRY_SECONDS", None) or RETRY_SECONDS
    return float(schedule[min(attempts, len(schedule)) - 1])


# --- The body ---------------------------------------------------------------------------


def event_data(event: str, object_id: int) -> dict:
    """The transaction or hold as the API shows it, as of the event: a hold changes once
    (held, then captured, released or expired), so hold.created shows it held and any
    later event shows it as it is now."""
    if event == WebhookEvent.CREDIT_TRANSACTION_CREATED:
        row = selectors.get_transaction(str(object_id))
        return schemas.Transaction.model_validate(selectors.transaction_detail(row)).model_dump()
    hold = CreditHold.objects.select_related("account").get(pk=object_id)
    data = selectors.hold_detail(hold)
    if event == WebhookEvent.HOLD_CREATED:
        data["status"] = "held"
    return data


def build_payload(row: WebhookDelivery) -> str:
    """The body: times written as the API writes them (pydantic's JSON)."""
    data = event_data(row.event, row.object_id)
    return to_json({"type": row.event, "timestamp": row.created_at, "data": data}).decode()


# --- The POST ---------------------------------------------------------------------------


class AddressRefused(OSError):
    """The endpoint's name resolves, now, to an address webhooks may not be sent to."""


class Refused(Exception):  # noqa: N818 (the receiver's answer)
    """The receiver answered, with another status than 2xx."""


def _checked_connection(address, timeout=None, source_address=None):
    """socket.create_connection, to an address check_url's rules allow: every address the
    name resolves to is checked, and one that is refused refuses the send."""
    host, port = address
    addresses = resolve(host)
    for ip in addresses:
        if reason := _refused(ip):
            raise AddressRefused(f"{host} is {reason} ({ip})")
    error = None
    for ip in addresses:
        try:
            return socket.create_connection((str(ip), port), timeout, source_address)
        except OSError as refused:
            error = refused
    raise error or OSError(f"{host} has no address")


@dataclass
class Answer:
    status_code: int | None = None
    excerpt: str = ""
    duration_ms: int = 0
    error: str = ""


def post(url: str, body: str, headers: dict[str, str], answer: Answer) -> None:
    """POST `body` to `url` and fill `answer`; raises unless the answer is a 2xx."""
    parts = urlsplit(url)
    timeout = getattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 10)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    connection._create_connection = _checked_connection  # the check, at connect
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    try:
        connection.request(
            "POST",
            path,
            body=body.encode(),
            headers={**headers, "Content-Type": "application/json", "User-Agent": USER_AGENT},
        )
        response = connection.getresponse()
        answer.status_code = response.status
        answer.excerpt = response.read(EXCERPT_CHARACTERS * 4).decode("utf-8", "replace")[
            :EXCERPT_CHARACTERS
        ]
    except Exception as error:
        answer.error = f"{type(error).__name__}: {error}"[:500]
        raise
    finally:
        answer.duration_ms = round((time.monotonic() - started) * 1000)
        connection.close()
    if not 200 <= answer.status_code < 300:
        raise Refused(f"HTTP {answer.status_code}")


# --- The channel ------------------------------------------------------------------------


def _load(pks: list[int]):
    return WebhookDelivery.objects.filter(pk__in=pks)


def _session():
    """What a batch's sends tell their outcomes' records: each delivery's Answer."""
    return nullcontext({})


def _send(row: WebhookDelivery, answers: dict) -> None:
    # Read now, not with the batch: staff may have disabled it or rolled its secret, or an
    # earlier delivery of the batch switched it off.
    endpoint = WebhookEndpoint.objects.get(pk=row.endpoint_id)
    if not endpoint.enabled:
        raise delivery.GiveUp("The endpoint is disabled.")
    if not row.payload:
        row.payload = build_payload(row)
    answers[row.pk] = answer = Answer()
    headers = signature_headers(
        endpoint, message_id=row.webhook_id, timestamp=timezone.now(), body=row.payload
    )
    post(endpoint.url, row.payload, headers, answer)


def _after_attempt(row: WebhookDelivery, answers: dict, status: str, attempts: int, error) -> None:
    """In the transaction of the outcome: the attempt's record, the body kept for the next
    tries, and the endpoint's failing streak. (The next delivery in order is claimed at the
    relay's next poll.)"""
    now = timezone.now()
    answer = answers.pop(row.pk, None) or Answer()
    WebhookAttempt.objects.create(
        delivery_id=row.pk,
        attempted_at=now,
        status_code=answer.status_code,
        response_excerpt=answer.excerpt,
        duration_ms=answer.duration_ms,
        error="" if error is None else (answer.error or f"{type(error).__name__}: {error}")[:500],
    )
    if row.payload:
        WebhookDelivery.objects.filter(pk=row.pk, payload="").update(payload=row.payload)
    if error is None:
        WebhookEndpoint.objects.filter(pk=row.endpoint_id, failing_since__isnull=False).update(
            failing_since=None
        )
    elif not isinstance(error, delivery.GiveUp):
        _count_failure(row.endpoint_id, now)


def _count_failure(endpoint_id: int, now: dt.datetime) -> None:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since"])
    elif endpoint.enabled and now - endpoint.failing_since >= SWITCH_OFF_AFTER:
        switch_off(endpoint, now=now)


def switch_off(endpoint: WebhookEndpoint, *, now: dt.datetime) -> None:
    """Disable an endpoint that has failed for SWITCH_OFF_AFTER: its pending deliveries
    fail (staff can send them again once it works), and whoever registered it is told,
    by email, through the notifications' own outbox."""
    endpoint.enabled = False
    endpoint.switched_off_at = now
    endpoint.save(update_fields=["enabled", "switched_off_at"])
    endpoint.deliveries.filter(status=delivery.Status.PENDING).update(
        status=delivery.Status.FAILED,
        next_attempt_at=None,
        error="The endpoint was switched off after 3 days of failures.",
    )
    logger.warning("Webhook endpoint %s switched off after 3 days of failures", endpoint.pk)
    if endpoint.created_by_id is None:
        return  # registered by the command: nobody to tell but the log
    since = format_date(timezone.localdate(endpoint.failing_since))
    rows = notifications.Rows()
    rows.add(
        recipient=endpoint.created_by_id,
        subject="A webhook endpoint was switched off",
        body=(
            f"Every delivery to {endpoint.url} has failed since {since}, so the endpoint "
            "was switched off. "
            "Fix the receiver, enable the endpoint again on the Webhooks page, and send "
            "the failed deliveries again there."
        ),
        link="/webhooks/",
        reference=f"webhook-off:{endpoint.pk}:{int(now.timestamp())}",
    )
    notifications.write(NotificationKind.WEBHOOK_SWITCHED_OFF, rows)


def send_again(delivery_ids) -> int:
    """Staff's "send again" for failed or sent deliveries: pending again, with fresh
    attempts; the same body and `webhook-id` go out (a receiver that lost an event gets it
    again; one that kept it knows the id)."""
    with transaction.atomic():
        return delivery.retry_failed(WEBHOOK.name, delivery_ids, sent_too=True)


# Deliveries deleted per transaction by delete_old_deliveries.
PRUNE_BATCH = 1000


def delete_old_deliveries() -> int:
    """Forget deliveries (with their attempts) made more than WEBHOOK_DELIVERY_RETENTION_DAYS
    ago that are done (sent or failed for good); one still pending is kept whatever its
    age. In batches, each its own short transaction. Returns how many."""
    cutoff = timezone.now() - dt.timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    done = WebhookDelivery.objects.filter(created_at__lt=cutoff, status__in=delivery.DONE)
    deleted = 0
    while batch := list(done.order_by("pk").values_list("pk", flat=True)[:PRUNE_BATCH]):
        with transaction.atomic():  # the attempts go with their delivery (CASCADE)
            _, per_model = WebhookDelivery.objects.filter(pk__in=batch).delete()
        deleted += per_model[WebhookDelivery._meta.label]
    return deleted


WEBHOOK = delivery.register(
    delivery.Channel(
        name="webhook",
        model=WebhookDelivery,
        load=_load,
        send=_send,
        session=_session,
        lock_space=DELIVERY_LOCK_SPACE,
        max_attempts=MAX_ATTEMPTS,
        backoff=retry_countdown,
        # The oldest pending delivery of each (endpoint, customer) only: commit order.
        claim_filter=(
            "NOT EXISTS (SELECT FROM api_webhookdelivery earlier"
            " WHERE earlier.endpoint_id = candidate.endpoint_id"
            " AND earlier.customer_key = candidate.customer_key"
            " AND earlier.status = 'pending' AND earlier.id < candidate.id)"
        ),
        after_attempt=_after_attempt,
    )
)
