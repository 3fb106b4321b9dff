"""Per-key rate limits: 429 with Retry-After once a key's burst is spent."""

import pytest

from api import ratelimit
from tests.api.conftest import ApiClient, assert_problem


@pytest.fixture
def slow_limit(settings):
    settings.API_RATE_LIMIT = 0.5
    settings.API_RATE_BURST = 3


@pytest.mark.django_db
def test_a_key_past_its_burst_gets_429_and_other_keys_do_not(slow_limit, api, reader):
    for _ in range(3):
        assert api.get("/api/v1/customers").status_code == 200
    refused = api.get("/api/v1/customers")
    assert_problem(refused, 429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert reader.get("/api/v1/customers").status_code == 200


@pytest.mark.django_db
def test_unauthenticated_requests_are_not_counted_against_a_key(slow_limit, api):
    for _ in range(5):
        assert ApiClient("sck_nope").get("/api/v1/customers").status_code == 401
    assert api.get("/api/v1/customers").status_code == 200


def test_the_in_process_bucket_refills_at_the_rate(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    bucket = ratelimit.LocalLimiter()
    assert [bucket.hit("k", 2, 2).allowed for _ in range(3)] == [True, True, False]
    assert bucket.hit("k", 2, 2).retry_after == 1
    now[0] += 0.5
    assert bucket.hit("k", 2, 2).allowed
    assert not bucket.hit("k", 2, 2).allowed


@pytest.mark.redis
def test_redis_is_used_when_a_broker_is_configured():
    assert isinstance(ratelimit.limiter(), ratelimit.RedisLimiter)
