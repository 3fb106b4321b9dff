"""Idempotency-Key: replay, conflict, missing header, concurrent retries, cleanup."""

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections, connection

from api import services as api_services
from api.models import ApiKeyChange, IdempotencyRecord
from api.tasks import delete_expired_idempotency_records
from credits import services
from credits.models import CreditTransaction
from tests.api.conftest import ApiClient, assert_problem
from tests.factories import UserFactory


@pytest.mark.django_db
def test_the_same_key_and_body_replays_the_first_response(api):
    path = f"/api/v1/customers/user_{UserFactory().pk}/credits"
    first = api.post(path, {"amount": "5", "memo": "Once"}, key="top-up-1")
    again = api.post(path, {"memo": "Once", "amount": "5"}, key="top-up-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert CreditTransaction.objects.count() == 1


@pytest.mark.django_db
def test_a_refusal_is_replayed_too(api):
    path = f"/api/v1/customers/user_{UserFactory().pk}/charges"
    first = assert_problem(api.post(path, {"amount": "5"}, key="charge-1"), 409)
    again = api.post(path, {"amount": "5"}, key="charge-1")
    assert again.status_code == 409 and again.json() == first
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_the_same_key_with_another_body_or_path_is_409(api):
    member = UserFactory()
    path = f"/api/v1/customers/user_{member.pk}/credits"
    assert api.post(path, {"amount": "5"}, key="k").status_code == 201
    assert_problem(api.post(path, {"amount": "6"}, key="k"), 409, "idempotency_conflict")
    other = f"/api/v1/customers/user_{member.pk}/charges"
    assert_problem(api.post(other, {"amount": "5"}, key="k"), 409, "idempotency_conflict")
    assert CreditTransaction.objects.count() == 1


@pytest.mark.django_db
def test_keys_belong_to_the_api_key(api):
    other = ApiClient(api_services.create_api_key(name="Shop", scope="write").key)
    path = f"/api/v1/customers/user_{UserFactory().pk}/credits"
    assert api.post(path, {"amount": "5"}, key="same").status_code == 201
    assert other.post(path, {"amount": "5"}, key="same").status_code == 201
    assert CreditTransaction.objects.count() == 2


@pytest.mark.django_db
def test_a_post_without_the_header_is_400_and_changes_nothing(api):
    path = f"/api/v1/customers/user_{UserFactory().pk}/credits"
    assert_problem(api.post(path, {"amount": "5"}, key=None), 400, "idempotency_key_missing")
    assert_problem(api.post(path, {"amount": "5"}, key=" "), 400, "idempotency_key_invalid")
    assert not CreditTransaction.objects.exists()


@pytest.mark.django_db
def test_invalid_requests_leave_the_key_free(api):
    path = f"/api/v1/customers/user_{UserFactory().pk}/credits"
    assert_problem(api.post(path, {"amount": "5", "extra": 1}, key="k"), 422)
    assert_problem(api.post(path, {"amount": "five"}, key="k"), 422)
    assert_problem(api.post(path.replace("user_", "user_9"), {"amount": "5"}, key="k"), 404)
    assert api.post(path, {"amount": "5"}, key="k").status_code == 201


@pytest.mark.django_db
def test_records_older_than_a_day_are_deleted_by_the_beat_task(api, clock, settings):
    path = f"/api/v1/customers/user_{UserFactory().pk}/credits"
    api.post(path, {"amount": "5"}, key="old")
    clock.advance(hours=24)
    api.post(path, {"amount": "5"}, key="new")
    assert delete_expired_idempotency_records() == 0  # kept at least 24 h
    clock.advance(hours=1, minutes=1)
    assert delete_expired_idempotency_records() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    beat = settings.CELERY_BEAT_SCHEDULE["delete-expired-idempotency-records"]
    assert beat["task"] == "api.tasks.delete_expired_idempotency_records"
    assert beat["schedule"] <= dt.timedelta(hours=1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("endpoint", ["credits", "charges"])
def test_ten_requests_at_once_with_one_key_record_one_change(write_key, endpoint):
    member = UserFactory()
    services.add_credits(member, 100)
    path = f"/api/v1/customers/user_{member.pk}/{endpoint}"
    barrier = threading.Barrier(10)

    def post():
        try:
            client = ApiClient(write_key.key)
            barrier.wait(timeout=30)
            return client.post(path, {"amount": "7"}, key="at-once")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda _: post(), range(10)))
    close_old_connections()

    assert all(r.status_code == 201 for r in responses), [r.content for r in responses]
    assert len({r.content for r in responses}) == 1
    assert sum(1 for r in responses if r.get("Idempotent-Replayed") == "true") == 9
    made = CreditTransaction.objects.filter(account=member.credit_account).exclude(
        pk=CreditTransaction.objects.filter(account=member.credit_account).order_by("seq")[0].pk
    )
    assert made.count() == 1
    assert ApiKeyChange.objects.filter(transaction=made.get()).exists()
