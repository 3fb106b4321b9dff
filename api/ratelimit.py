"""Requests per API key: a token bucket of API_RATE_BURST tokens refilled at API_RATE_LIMIT
per second. In Redis when CELERY_BROKER_URL points at Redis (every web process shares the
buckets), else in this process.

Redis that is down or slow does not fail requests: the limiter lets the request through
and logs it (a limit is a guard against a runaway client, not part of the ledger's rules).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)

# KEYS[1] the bucket; ARGV rate/s, burst, now (s). Answers {allowed, seconds to wait}.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # whole seconds (Retry-After is delta-seconds), at least 1 when refused


def _decision(allowed: bool, wait: float) -> Decision:
    return Decision(allowed, 0 if allowed else max(1, math.ceil(wait)))


class LocalLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def hit(self, bucket: str, rate: float, burst: float) -> Decision:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(bucket, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens >= 1:
                self._buckets[bucket] = (tokens - 1, now)
                return _decision(True, 0)
            self._buckets[bucket] = (tokens, now)
            return _decision(False, (1 - tokens) / rate)

    def reset(self):
        with self._lock:
            self._buckets.clear()


class RedisLimiter:
    def __init__(self, url: str):
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self._script = self._client.register_script(TOKEN_BUCKET_LUA)

    def hit(self, bucket: str, rate: float, burst: float) -> Decision:
        try:
            allowed, wait = self._script(
                keys=[f"api:rate:{bucket}"], args=[rate, burst, time.time()]
            )
        except Exception:  # Redis away: let it through (see the module's docstring)
            logger.warning("Rate limiter: Redis did not answer; request let through.")
            return _decision(True, 0)
        return _decision(bool(int(allowed)), float(wait))

    def reset(self):
        for name in self._client.scan_iter("api:rate:*"):
            self._client.delete(name)


_limiter = None
_limiter_lock = threading.Lock()


def limiter():
    global _limiter
    with _limiter_lock:
        if _limiter is None:
            url = settings.CELERY_BROKER_URL
            _limiter = RedisLimiter(url) if url.startswith("redis") else LocalLimiter()
        return _limiter


def hit(api_key_id: int) -> Decision:
    """Count one request of the key; refused when its bucket is empty."""
    rate = float(settings.API_RATE_LIMIT)
    burst = float(settings.API_RATE_BURST)
    return limiter().hit(str(api_key_id), rate, burst)
