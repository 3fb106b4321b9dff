"""/api/v1/openapi.json describes every request, response and error."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_openapi_3_1_with_the_endpoints(schema):
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) == {
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}",
        "/api/v1/customers/{customer_id}/transactions",
        "/api/v1/transactions/{transaction_id}",
        "/api/v1/customers/{customer_id}/credits",
        "/api/v1/customers/{customer_id}/charges",
        "/api/v1/customers/{customer_id}/holds",
        "/api/v1/holds/{hold_id}/capture",
        "/api/v1/holds/{hold_id}/release",
        "/api/v1/transactions/{transaction_id}/refund",
        "/api/v1/transactions/{transaction_id}/reverse",
        "/api/v1/customers/{customer_id}/transfers",
        "/api/v1/ping",
    }
    assert schema["components"]["securitySchemes"]["KeyAuth"]["scheme"] == "bearer"


def test_every_post_requires_an_idempotency_key_and_every_error_is_a_problem(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = {(p["in"], p["name"]): p for p in operation.get("parameters", [])}
            if method == "post":
                assert names[("header", "Idempotency-Key")]["required"], path
                # A release changes a hold, and answers it: 200; every other POST creates.
                success = "200" if path.endswith("/release") else "201"
                assert success in operation["responses"], path
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], path
            assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_amounts_are_described_as_two_place_decimal_strings(schema):
    transaction = schema["components"]["schemas"]["Transaction"]["properties"]
    assert transaction["amount"]["pattern"] == r"^-?\d+\.\d{2}$"
    assert transaction["amount"]["type"] == "string"
