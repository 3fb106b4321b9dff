"""A grant to many is its own outbox row: the request that records it never calls the
broker (SPEC, "Delivery"), the relay hands its run to a worker after the commit, and a
run delivered twice grants nothing twice."""

import re
import socket
import time

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from credits import services
from credits.models import CreditBatch, CreditTransaction
from notifications import delivery
from tests.factories import CompanyFactory, MembershipFactory, StaffFactory, UserFactory
from tests.notifications.test_worker import (
    configured_broker,  # noqa: F401 (fixtures)
    publishing_to,
    relay_on,  # noqa: F401
    worker_on,  # noqa: F401
)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db
def test_a_batch_is_due_at_once_and_a_run_delivered_twice_grants_once(
    clock, django_capture_on_commit_callbacks
):
    members = UserFactory.create_batch(3)
    batch = services.grant_to_many(members, 5, idempotency_key="outage")
    batch.refresh_from_db()
    assert (batch.run_status, batch.next_run_at, batch.status) == ("pending", clock.now, "pending")
    assert delivery.claim(services.CREDIT_BATCH) == [batch.pk]

    for _ in range(2):  # handed out twice (a lease ran out, say)
        assert delivery.deliver("credit_batch", [batch.pk]) == {batch.pk: ("sent", "")}
    batch.refresh_from_db()
    assert (batch.status, batch.run_status, batch.run_attempts) == ("done", "sent", 1)
    assert CreditTransaction.objects.filter(batch=batch).count() == 3
    services.run_credit_batch(batch.pk)  # and run again by hand
    assert CreditTransaction.objects.filter(batch=batch).count() == 3


@pytest.mark.django_db
def test_a_run_that_fails_is_tried_again_and_the_page_says_when_it_stopped(
    clock, client, adjuster, monkeypatch
):
    batch = services.grant_to_many(UserFactory.create_batch(2), 5, idempotency_key="outage")

    def broken(batch_id):
        raise ConnectionError("the database went away")

    monkeypatch.setattr(services, "run_credit_batch", broken)
    status, error = delivery.deliver("credit_batch", [batch.pk])[batch.pk]
    assert (status, error) == ("pending", "ConnectionError: the database went away")
    page = client.get(reverse("credits:batch", args=[batch.pk])).content.decode()
    assert "Granting…" in page

    CreditBatch.objects.filter(pk=batch.pk).update(run_attempts=5)  # the last attempt next
    clock.advance(minutes=10)
    assert delivery.claim(services.CREDIT_BATCH) == [batch.pk]
    assert delivery.deliver("credit_batch", [batch.pk])[batch.pk][0] == "failed"
    page = client.get(reverse("credits:batch", args=[batch.pk])).content.decode()
    assert "Stopped" in page and "the database went away" in page


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_the_request_does_not_wait_for_a_broker_and_a_worker_runs_the_batch_later(
    client,
    configured_broker,  # noqa: F811 (the fixtures imported above)
    worker_on,  # noqa: F811
    relay_on,  # noqa: F811
):
    admin = StaffFactory()
    admin.user_permissions.add(Permission.objects.get(codename="adjust_balance"))
    client.force_login(admin)
    acme = CompanyFactory(name="Acme Ltd")
    for _ in range(5):
        MembershipFactory(company=acme)
    url = reverse("credits:grant")
    key = re.search(r'name="idempotency_key" value="(\w+)"', client.get(url).content.decode())
    data = {"idempotency_key": key.group(1), "company": acme.pk, "amount": "5", "memo": "Outage"}
    review = client.post(url, data).content.decode()
    data["confirmed"] = re.search(r'name="confirmed" value="(\w+)"', review).group(1)

    with publishing_to(f"redis://127.0.0.1:{closed_port()}/0"):  # Redis is down
        started = time.monotonic()
        done = client.post(url, data)
        took = time.monotonic() - started
    assert done.status_code == 302
    assert took < 1.5, f"the request took {took:.1f} s"
    batch = CreditBatch.objects.get()
    assert batch.status == "pending"

    worker_on(configured_broker)
    relay_on(configured_broker)
    deadline = time.monotonic() + 30
    while batch.status != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
        batch.refresh_from_db()
    assert batch.status == "done" and batch.run_status == "sent"
    assert CreditTransaction.objects.filter(batch=batch).count() == 5
    result = client.get(done["Location"]).content.decode()
    assert "5 of 5 customers have their credits" in result
