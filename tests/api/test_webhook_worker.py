"""Webhooks with a real relay and a real Celery worker process on Redis (the processes of
tests/notifications/test_worker.py), to a receiver on 127.0.0.1 that verifies every
signature with the standardwebhooks library: every event arrives, in commit order per
customer, a receiver's 500s are retried under the same webhook-id, and a worker SIGKILLed
while it waits for the receiver's answer loses nothing."""

import datetime as dt
import time
from collections import Counter, defaultdict

import pytest

from api import webhooks
from api.models import WebhookDelivery, WebhookEvent
from credits import services
from tests.factories import UserFactory
from tests.notifications import test_worker as processes

from .webhook_receiver import start_receiver

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SETTLE_TIMEOUT = 60
# The email tests' fixtures: a Celery worker, a relay, the broker emptied.
configured_broker, worker_on, relay_on = (
    processes.configured_broker,
    processes.worker_on,
    processes.relay_on,
)


def wait_until_all_sent(timeout: float = SETTLE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            WebhookDelivery.objects.exists()
            and not WebhookDelivery.objects.exclude(status="sent").exists()
        ):
            return True
        time.sleep(0.2)
    return False


def test_a_real_worker_delivers_every_event_in_order_through_500s_and_a_sigkill(
    configured_broker, worker_on, relay_on, settings, capsys
):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    env = {"WEBHOOKS_ALLOW_PRIVATE": "1", "WEBHOOK_RETRY_SECONDS": "0.2"}
    worker = worker_on(configured_broker, **env)
    relay_on(configured_broker, **env)
    receiver = start_receiver()
    endpoint = webhooks.create_webhook_endpoint(receiver.url, events=WebhookEvent.values)
    ann, bob, cid = UserFactory(), UserFactory(), UserFactory()
    committed = defaultdict(list)  # customer -> webhook-ids in commit order

    def record(customer, event, object_id):
        committed[customer.pk].append(f"msg_{event.replace('.', '_')}_{object_id}")

    # Ann's first event: 500 three times, then 200. Bob's second: answered after 4 s, by
    # which time the worker's pool processes are SIGKILLed.
    first_of_ann = services.add_credits(ann, 30, memo="First")
    record(ann, "credit_transaction.created", first_of_ann.pk)
    slow = []
    tries = Counter()

    def answer(request):
        tries[request.webhook_id] += 1
        if request.json["data"]["id"] == first_of_ann.pk and request.json["type"].startswith(
            "credit_transaction"
        ):
            return 500 if tries[request.webhook_id] <= 3 else 200
        if request.webhook_id in slow and tries[request.webhook_id] == 1:
            return 200, 4.0
        return 200

    receiver.answer = answer
    for customer in (bob, cid):
        row = services.add_credits(customer, 20)
        record(customer, "credit_transaction.created", row.pk)
    slowed = services.charge_credits(bob, 5, kind="booking", memo="Desk")
    slow.append(f"msg_credit_transaction_created_{slowed.pk}")
    record(bob, "credit_transaction.created", slowed.pk)
    for amount in (1, 2):
        row = services.charge_credits(ann, amount, kind="booking")
        record(ann, "credit_transaction.created", row.pk)
    hold = services.hold_credits(cid, 3, expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    record(cid, "hold.created", hold.pk)
    started = time.monotonic()
    while slow[0] not in {r.webhook_id for r in receiver.received}:
        assert time.monotonic() - started < 30, "the slow delivery never started"
        time.sleep(0.05)
    worker.kill_pool_processes()  # mid-delivery: the receiver has it, the answer is pending
    killed_at = time.monotonic()
    booking = services.capture_hold(hold, 2)
    record(cid, "hold.captured", hold.pk)
    record(cid, "credit_transaction.created", booking.pk)

    assert wait_until_all_sent(), list(WebhookDelivery.objects.values("id", "status", "error"))
    took = time.monotonic() - killed_at
    receiver.server.shutdown()
    with capsys.disabled():
        print(
            f"\n[webhooks] all {WebhookDelivery.objects.count()} sent {took:.1f} s after the kill"
        )

    receiver.verified(endpoint.secret)  # every request signed
    received = Counter(r.webhook_id for r in receiver.received)
    every = {mid for ids in committed.values() for mid in ids}
    assert set(received) == every, "an event is missing"
    first = f"msg_credit_transaction_created_{first_of_ann.pk}"
    assert received[first] == 4, "500, 500, 500, then 200: four tries, one webhook-id"
    duplicates = {mid for mid, n in received.items() if n > 1} - {first}
    assert duplicates <= set(slow), "only the one the kill interrupted may come twice"
    # Commit order per customer: the order each event was first received in.
    firsts = []
    for request in receiver.received:
        if request.webhook_id not in firsts:
            firsts.append(request.webhook_id)
    for customer, ids in committed.items():
        assert [mid for mid in firsts if mid in ids] == ids, f"customer {customer} out of order"
