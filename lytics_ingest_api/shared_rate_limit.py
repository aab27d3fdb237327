"""Token buckets in Redis, shared by every API worker and host.

One Lua script per request takes a token atomically, on Redis's own clock, so N
workers behind a load balancer admit the configured rate between them, not N times
it. While Redis cannot be reached, each worker falls back to its own in-process
bucket (the limit then holds per worker) and `lytics_rate_limit_fallbacks_total`
counts it: a limiter outage must not refuse or lose events.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from lytics_ingest_api.rate_limit import Decision, RateLimiter, decision

log = logging.getLogger(__name__)

FALLBACKS = Counter(
    "lytics_rate_limit_fallbacks_total",
    "Requests admitted by the in-process limiter because Redis could not be reached",
)

# KEYS[1]: the bucket. ARGV: rate per second, burst. Returns {allowed, tokens left}.
# Tokens travel as text: Redis turns a Lua number into an integer.
TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class SharedRateLimiter:
    def __init__(self, redis: Redis, prefix: str, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(TAKE)
        self._fallback = RateLimiter(per_second, burst)

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    async def decide(self, key_id: int) -> Decision:
        try:
            allowed, tokens = await self._take(
                keys=[f"{self._prefix}:rate:{key_id}"], args=[self.per_second, self.burst]
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limit store unavailable, limiting in this process: %s", exc)
            FALLBACKS.inc()
            return self._fallback.take(key_id)
        return decision(bool(allowed), float(tokens), self.per_second, self.burst)

    async def close(self) -> None:
        await self._redis.aclose()
