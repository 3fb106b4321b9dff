"""Webhook delivery through the outbox (api/sql/webhooks.sql, api/webhook_delivery.py), in
this process: the relay's own code with tasks run eagerly, to a receiver on 127.0.0.1
that verifies every signature with the standardwebhooks library. The real worker, relay
and Redis are in test_webhook_worker.py."""

import datetime as dt
import ipaddress
import json
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from standardwebhooks.webhooks import Webhook

from api import webhook_delivery, webhooks
from api.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from credits import services
from notifications import delivery
from notifications.models import Notification, NotificationKind
from tests.factories import StaffFactory, UserFactory

from .webhook_receiver import drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return StaffFactory(email="integrations@example.com")


@pytest.fixture
def endpoint(receiver, fast_retries, owner):
    return webhooks.create_webhook_endpoint(
        receiver.url, events=WebhookEvent.values, created_by=owner
    ).endpoint


def test_every_ledger_row_and_hold_event_is_delivered_once_signed_in_the_apis_shape(
    endpoint, receiver, eager_tasks, write_key, api
):
    member = UserFactory()
    added = services.add_credits(member, 50, memo="Welcome")
    charged = services.charge_credits(member, 5, kind="booking", memo="Desk")
    captured = services.hold_credits(
        member, 10, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    )
    booking = services.capture_hold(captured, 4)
    released = services.hold_credits(
        member, 3, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    )
    services.release_hold(released)
    drain()

    bodies = receiver.verified(endpoint.secret)  # raises on a bad signature
    events = [(body["type"], body["data"]["id"]) for body in bodies]
    assert sorted(events) == sorted(
        [
            ("credit_transaction.created", added.pk),
            ("credit_transaction.created", charged.pk),
            ("hold.created", captured.pk),
            ("hold.captured", captured.pk),
            ("credit_transaction.created", booking.pk),
            ("hold.created", released.pk),
            ("hold.released", released.pk),
        ]
    )
    assert events.index(("hold.created", captured.pk)) < events.index(
        ("hold.captured", captured.pk)
    ), "a customer's events arrive in commit order"
    ids = Counter(r.webhook_id for r in receiver.received)
    assert set(ids.values()) == {1}
    assert f"msg_credit_transaction_created_{added.pk}" in ids
    # data is the transaction exactly as GET /api/v1/transactions/{id} shows it
    for body in bodies:
        if body["type"] == "credit_transaction.created":
            shown = api.get(f"/api/v1/transactions/{body['data']['id']}").json()
            assert body["data"] == shown
    # a hold as of each event: held when made, captured or released when it ended
    by_event = {(b["type"], b["data"]["id"]): b["data"] for b in bodies}
    assert by_event["hold.created", captured.pk] == {
        "id": captured.pk,
        "customer_id": f"user_{member.pk}",
        "amount": "10.00",
        "status": "held",
        "expires_at": by_event["hold.created", captured.pk]["expires_at"],
    }
    assert by_event["hold.captured", captured.pk]["status"] == "captured"
    assert by_event["hold.released", released.pk]["status"] == "released"
    assert not WebhookDelivery.objects.exclude(status="sent").exists()
    attempt = WebhookAttempt.objects.first()
    assert attempt.status_code == 200 and attempt.response_excerpt == '{"ok": true}'


def test_expiries_of_lots_and_holds_are_delivered(endpoint, receiver, eager_tasks, clock):
    member = UserFactory()
    services.add_credits(member, 20, expires_on=clock.today() + dt.timedelta(days=1))
    hold = services.hold_credits(member, 5, expires_at=clock.now + dt.timedelta(hours=1))
    clock.advance(days=3)
    services.expire_due_credits()
    drain()
    events = [r.json["type"] for r in receiver.received]
    assert events.count("hold.expired") == 1
    expired = [r.json for r in receiver.received if r.json["type"] == "hold.expired"][0]
    assert expired["data"]["id"] == hold.pk and expired["data"]["status"] == "expired"
    kinds = [
        r.json["data"]["type"]
        for r in receiver.received
        if r.json["type"] == "credit_transaction.created"
    ]
    assert kinds == ["admin_allocation", "expiration"]
    for request in receiver.received:  # signed at the app's clock: same library, same bytes
        signed = Webhook(endpoint.secret).sign(
            request.webhook_id,
            dt.datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), dt.UTC),
            request.body,
        )
        assert request.headers["webhook-signature"] == signed


def test_a_receiver_failing_three_times_gets_the_same_event_with_the_same_id(
    endpoint, receiver, eager_tasks
):
    receiver.statuses = [500, 500, 500]
    services.add_credits(UserFactory(), 7, memo="Retried")
    drain()
    assert len(receiver.received) == 4
    assert len({r.webhook_id for r in receiver.received}) == 1
    assert len({r.body for r in receiver.received}) == 1, "every retry sends the same body"
    receiver.verified(endpoint.secret)
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts, row.error) == ("sent", 4, "")
    log = list(row.attempt_log.order_by("id"))
    assert [a.status_code for a in log] == [500, 500, 500, 200]
    assert log[0].response_excerpt == "Internal trouble, try later"
    assert log[0].error == "Refused: HTTP 500"


def test_retries_follow_standard_webhooks_schedule_for_more_than_a_day(settings):
    settings.WEBHOOK_RETRY_SECONDS = []
    delays = [webhook_delivery.retry_countdown(n) for n in range(1, 8)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert sum(delays) > 24 * 3600
    assert webhook_delivery.WEBHOOK.max_attempts == 8


def test_a_customers_events_wait_for_their_earlier_ones_and_others_do_not(
    endpoint, receiver, eager_tasks, clock, settings
):
    settings.WEBHOOK_RETRY_SECONDS = [60] * 7
    ann, bob = UserFactory(), UserFactory()
    receiver.answer = lambda request: 500 if len(receiver.received) == 1 else 200
    ann_rows = [services.add_credits(ann, n + 1).pk for n in range(3)]
    bob_rows = [services.add_credits(bob, n + 1).pk for n in range(2)]
    drain()
    # Ann's first failed: her others wait for it; Bob's went out in order.
    sent = [r.json["data"]["id"] for r in receiver.received]
    assert sent == [ann_rows[0], *bob_rows]
    clock.advance(seconds=61)
    drain()
    sent = [r.json["data"]["id"] for r in receiver.received]
    assert sent == [ann_rows[0], *bob_rows, *ann_rows]


def test_a_delivery_that_failed_for_good_does_not_hold_back_the_next(
    endpoint, receiver, eager_tasks
):
    member = UserFactory()
    first = services.add_credits(member, 1).pk
    receiver.answer = lambda request: 500 if request.json["data"]["id"] == first else 200
    second = services.add_credits(member, 2).pk
    drain()
    sent = [r.json["data"]["id"] for r in receiver.received]
    assert sent == [first] * 8 + [second]
    failed = WebhookDelivery.objects.get(object_id=first)
    assert (failed.status, failed.attempts) == ("failed", 8)

    # staff send it again: pending with fresh attempts, and it goes out
    receiver.answer = None
    assert webhook_delivery.send_again([failed.pk]) == 1
    drain()
    failed.refresh_from_db()
    assert failed.status == "sent" and receiver.received[-1].json["data"]["id"] == first
    assert receiver.received[-1].webhook_id == receiver.received[0].webhook_id


def test_an_endpoint_failing_for_three_days_is_switched_off_and_its_owner_told(
    endpoint, receiver, eager_tasks, clock, settings, owner
):
    settings.WEBHOOK_RETRY_SECONDS = [3600] * 7
    receiver.answer = lambda request: 503
    member = UserFactory()
    services.add_credits(member, 1)
    drain()
    endpoint.refresh_from_db()
    assert endpoint.failing_since == clock.now and endpoint.enabled
    clock.advance(days=2, hours=23)
    services.add_credits(UserFactory(), 1)
    drain()
    endpoint.refresh_from_db()
    assert endpoint.enabled, "not yet three days"
    clock.advance(hours=1)
    services.add_credits(UserFactory(), 1)
    drain()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.switched_off_at == clock.now
    assert not WebhookDelivery.objects.filter(status="pending").exists()
    notice = Notification.objects.get(kind=NotificationKind.WEBHOOK_SWITCHED_OFF)
    assert notice.recipient == owner and endpoint.url in notice.body
    # switched off, it is sent nothing more; enabled again, its streak starts afresh
    services.add_credits(member, 1)
    assert WebhookDelivery.objects.count() == 3
    webhooks.set_enabled(endpoint, True)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.switched_off_at is None


def test_a_success_ends_the_failing_streak(endpoint, receiver, eager_tasks, clock):
    receiver.statuses = [500]
    services.add_credits(UserFactory(), 1)
    drain()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_without_an_enabled_subscriber_the_ledger_writes_no_delivery(
    receiver, fast_retries, eager_tasks
):
    member = UserFactory()
    services.add_credits(member, 5)
    holds_only = webhooks.create_webhook_endpoint(receiver.url, events=["hold.created"])
    services.add_credits(member, 5)
    off = webhooks.create_webhook_endpoint(receiver.url, events=WebhookEvent.values).endpoint
    webhooks.set_enabled(off, False)
    services.add_credits(member, 5)
    assert WebhookDelivery.objects.count() == 0
    services.hold_credits(member, 1, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    assert list(WebhookDelivery.objects.values_list("endpoint", "event")) == [
        (holds_only.endpoint.pk, "hold.created")
    ]


def test_a_rolled_back_change_delivers_nothing(endpoint, eager_tasks):
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        services.add_credits(UserFactory(), 5)
        raise RuntimeError
    assert WebhookDelivery.objects.count() == 0


def test_the_address_is_checked_again_when_the_webhook_is_sent(
    endpoint, receiver, eager_tasks, settings, monkeypatch
):
    # Registered on loopback while private addresses were allowed; no longer allowed.
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    services.add_credits(UserFactory(), 5)
    drain()
    assert receiver.received == []
    row = WebhookDelivery.objects.get()
    assert row.status == "failed" and "loopback" in row.error
    assert "loopback" in row.attempt_log.first().error

    # A name that pointed at a public address now points at the metadata service.
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    answers = {"hooks.example.com": "93.184.216.34"}
    monkeypatch.setattr(
        webhooks, "resolve", lambda host: [ipaddress.ip_address(answers.get(host, host))]
    )
    monkeypatch.setattr(
        webhook_delivery, "resolve", lambda host: [ipaddress.ip_address(answers.get(host, host))]
    )
    rebound = webhooks.create_webhook_endpoint(
        "http://hooks.example.com/hook", events=WebhookEvent.values
    ).endpoint
    webhooks.set_enabled(endpoint, False)
    answers["hooks.example.com"] = "169.254.169.254"
    services.add_credits(UserFactory(), 5)
    drain()
    row = WebhookDelivery.objects.get(endpoint=rebound)
    assert row.status == "failed" and "link-local" in row.error


@pytest.fixture
def webhook_staff(client):
    staff = StaffFactory()
    staff.user_permissions.add(Permission.objects.get(codename="manage_webhooks"))
    client.force_login(staff)
    return client


def test_staff_see_deliveries_with_their_attempts_and_send_a_failed_one_again(
    endpoint, receiver, eager_tasks, webhook_staff: Client
):
    receiver.answer = lambda request: 500
    services.add_credits(UserFactory(), 5)
    drain()
    row = WebhookDelivery.objects.get()
    assert row.status == "failed"
    page = webhook_staff.get("/webhooks/").content.decode()
    assert "credit_transaction.created" in page and row.webhook_id in page
    assert page.count("500") >= 8 and "Send again" in page

    receiver.answer = None
    response = webhook_staff.post(f"/webhooks/deliveries/{row.pk}/send-again/")
    assert response.status_code == 302
    drain()
    row.refresh_from_db()
    assert row.status == "sent"

    # htmx: the endpoint's deliveries come back as the page's partial
    receiver.answer = lambda request: 500
    services.add_credits(UserFactory(), 5)
    drain()
    failed = WebhookDelivery.objects.get(status="failed")
    receiver.answer = None
    partial = webhook_staff.post(
        f"/webhooks/deliveries/{failed.pk}/send-again/", HTTP_HX_REQUEST="true"
    )
    assert partial.status_code == 200
    assert "<html" not in partial.content.decode() and failed.webhook_id in partial.content.decode()


def test_payload_amounts_and_times_are_the_apis(endpoint, receiver, eager_tasks):
    member = UserFactory()
    row = services.add_credits(member, Decimal("12.5"), memo="Top-up")
    drain()
    body = json.loads(receiver.received[0].body)
    assert body["type"] == "credit_transaction.created"
    assert body["data"]["amount"] == "12.50" and body["data"]["id"] == row.pk
    assert body["timestamp"].endswith("Z") and body["data"]["created_at"].endswith("Z")


def test_staff_send_a_sent_delivery_again_with_its_id_and_body(
    endpoint, receiver, eager_tasks, webhook_staff: Client
):
    services.add_credits(UserFactory(), 5)
    drain()
    row = WebhookDelivery.objects.get()
    assert row.status == "sent" and len(receiver.received) == 1
    assert "Send again" in webhook_staff.get("/webhooks/").content.decode()

    assert webhook_staff.post(f"/webhooks/deliveries/{row.pk}/send-again/").status_code == 302
    drain()
    first, again = receiver.received
    assert (again.webhook_id, again.body) == (first.webhook_id, first.body)
    receiver.verified(endpoint.secret)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.attempt_log.count()) == ("sent", 1, 2)


def test_done_deliveries_are_forgotten_after_the_retention_and_pending_ones_kept(
    endpoint, receiver, eager_tasks, clock, settings
):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 30
    member = UserFactory()
    services.add_credits(member, 1)
    drain()  # sent
    receiver.answer = lambda request: 500
    services.add_credits(member, 2)  # failed for good
    drain()
    old_done = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert {row.status for row in WebhookDelivery.objects.all()} == {"sent", "failed"}
    webhooks.set_enabled(endpoint, True)
    clock.advance(days=10)
    services.add_credits(member, 3)  # pending: the receiver still fails, retries wait
    delivery.relay_due()
    pending = WebhookDelivery.objects.get(status="pending")

    clock.advance(days=15)  # the first two are 25 days old, the third 15
    assert webhook_delivery.delete_old_deliveries() == 0, "none is older than 30 days yet"
    clock.advance(days=10)  # 35 and 25 days
    assert webhook_delivery.delete_old_deliveries() == len(old_done) == 2
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [pending.pk]
    assert not WebhookAttempt.objects.filter(delivery_id__in=old_done).exists()
    assert WebhookAttempt.objects.filter(delivery=pending).exists()
    clock.advance(days=10)  # still pending at 35 days: kept
    assert webhook_delivery.delete_old_deliveries() == 0
    assert WebhookDelivery.objects.filter(pk=pending.pk, status="pending").exists()
