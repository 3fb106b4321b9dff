"""Every failure under /api/ is application/problem+json, never a 500 for input."""

import pytest

from tests.api.conftest import assert_problem
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_unknown_paths_and_methods(api):
    assert_problem(api.get("/api/v1/nothing-here"), 404, "not_found")
    assert_problem(api.get("/api/v2/customers"), 404)
    assert_problem(api.get("/api/"), 404)
    response = api.client.delete("/api/v1/customers", HTTP_AUTHORIZATION=f"Bearer {api.key}")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_malformed_json_wrong_content_type_and_invalid_values(api):
    path = f"/api/v1/customers/user_{UserFactory().pk}/charges"
    assert_problem(api.post(path, raw='{"amount": '), 400, "malformed_json")
    assert_problem(api.post(path, raw="amount=5", content_type="text/plain"), 415)
    body = assert_problem(api.post(path, {"amount": "5", "colour": "red"}), 422, "invalid_values")
    assert "colour" in body["errors"]
    body = assert_problem(api.post(path, {"amount": "five"}), 422, "invalid_values")
    assert body["errors"] == {"amount": ["Enter the amount as a number."]}
    body = assert_problem(api.post(path, {"amount": "1.001"}), 422)
    assert "amount" in body["errors"]
    assert_problem(api.post(path, raw="[1, 2]"), 422)
    assert_problem(api.post(path, raw='"text"'), 422)
    assert_problem(api.post(path, {"amount": "5", "memo": "x" * 501}), 422)
    assert_problem(api.post(path, {"amount": 5, "type": "expiration"}), 422)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "lots"},
        {"cursor": "%%%"},
        {"cursor": "dC54"},
        {"created_gte": "yesterday"},
        {"created_lt": "2026-01-01T00:00:00"},
        {"type": "gift"},
        {"cursor": "\x00"},
        {"cursor": "c" * 101},
        {"created_lt": "0001-01-01T00:00:00+01:00"},
    ],
)
def test_odd_query_values_are_422(api, query):
    customer = UserFactory()
    assert_problem(api.get(f"/api/v1/customers/user_{customer.pk}/transactions", query), 422)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers/user_0",
        "/api/v1/customers/user_99999999999999999999999",
        "/api/v1/customers/guest_1",
        "/api/v1/customers/%00",
        "/api/v1/transactions/abc",
        "/api/v1/transactions/0",
        "/api/v1/transactions/99999999999999999999999",
    ],
)
def test_odd_ids_are_404(api, path):
    assert_problem(api.get(path), 404)


def test_an_overlong_idempotency_key_is_400(api):
    path = f"/api/v1/customers/user_{UserFactory().pk}/credits"
    assert_problem(api.post(path, {"amount": "1"}, key="k" * 256), 400, "idempotency_key_invalid")


def test_offsets_postgresql_does_not_take_are_read_as_utc(api):
    customer = UserFactory()
    path = f"/api/v1/customers/user_{customer.pk}/transactions"
    response = api.get(path, {"created_gte": "0007-01-24T21:28:45.0-22:59"})
    assert response.status_code == 200
