import json

import pytest
from django.test import Client

from api import ratelimit, services
from api.models import Scope


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    ratelimit.limiter().reset()
    yield
    ratelimit.limiter().reset()


class ApiClient:
    """The Django test client speaking to the API with one key."""

    def __init__(self, key: str | None):
        self.key = key
        self.client = Client()

    def _headers(self, headers):
        extra = {"HTTP_AUTHORIZATION": f"Bearer {self.key}"} if self.key else {}
        for name, value in (headers or {}).items():
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        return extra

    def get(self, path, params=None, headers=None):
        return self.client.get(path, params or {}, **self._headers(headers))

    def post(self, path, body=None, *, key="k-1", headers=None, raw=None, content_type=None):
        headers = {**({"Idempotency-Key": key} if key else {}), **(headers or {})}
        data = raw if raw is not None else json.dumps(body or {})
        return self.client.post(
            path,
            data,
            content_type=content_type or "application/json",
            **self._headers(headers),
        )


@pytest.fixture
def write_key(db):
    return services.create_api_key(name="Bookings", scope=Scope.WRITE)


@pytest.fixture
def read_key(db):
    return services.create_api_key(name="Accounting", scope=Scope.READ)


@pytest.fixture
def api(write_key):
    return ApiClient(write_key.key)


@pytest.fixture
def reader(read_key):
    return ApiClient(read_key.key)


def assert_problem(response, status: int, code: str | None = None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    if code:
        assert body["type"] == f"urn:spacecredits:problem:{code}", body
    return body
