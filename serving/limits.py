"""Per-key limits at the gateway: requests per minute and tokens per UTC day, in fixed windows.

Counted in Redis when `PROVENANT_REDIS_URL` is set (INCR / INCRBY on a key that expires with its
window), in the database otherwise (`UsageCounter`: one row per key and window, incremented by a
single conditional `UPDATE … SET used = used + 1 WHERE used < limit`, which the database applies
atomically, so two workers or two hosts never both take the last request of a window).

Requests are counted before the call (a refused request uses nothing); tokens after it, from
what the backend reports. A call is refused when the day's tokens are already used up, and its
`max_tokens` is lowered to what is left of the day's budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from functools import lru_cache

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from serving.models import ConsumerKey, UsageCounter, UsageWindow


@dataclass(frozen=True)
class LimitHit:
    """A limit the call would exceed: the sentence for the client and when to try again."""

    message: str
    retry_after: int  # seconds


def _minute_start(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def _day_start(now: datetime) -> datetime:
    return now.astimezone(dt_timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _seconds_until(end: datetime, now: datetime) -> int:
    return max(1, math.ceil((end - now).total_seconds()))


class DatabaseCounters:
    """Fixed-window counters in `UsageCounter` rows."""

    def _row(self, key: ConsumerKey, window: str, start: datetime):
        # Create the window's row if it is not there (a concurrent creator wins harmlessly).
        UsageCounter.objects.bulk_create([UsageCounter(key=key, window=window, starts_at=start, used=0)], ignore_conflicts=True)
        return UsageCounter.objects.filter(key=key, window=window, starts_at=start)

    def take_request(self, key: ConsumerKey, limit: int, start: datetime) -> bool:
        """Count one request in the minute starting at `start`; False when the minute is full."""
        return self._row(key, UsageWindow.MINUTE, start).filter(used__lt=limit).update(used=F("used") + 1) == 1

    def tokens_used(self, key: ConsumerKey, start: datetime) -> int:
        return UsageCounter.objects.filter(key=key, window=UsageWindow.DAY, starts_at=start).values_list("used", flat=True).first() or 0

    def add_tokens(self, key: ConsumerKey, tokens: int, start: datetime) -> None:
        self._row(key, UsageWindow.DAY, start).update(used=F("used") + tokens)

    def forget_before(self, key: ConsumerKey, day_start: datetime) -> None:
        UsageCounter.objects.filter(key=key, starts_at__lt=day_start - timedelta(days=1)).delete()


class RedisCounters:
    """The same windows as Redis keys that expire when their window has passed."""

    def __init__(self, url: str):
        import redis

        self.redis = redis.Redis.from_url(url)

    @staticmethod
    def _name(key: ConsumerKey, window: str, start: datetime) -> str:
        return f"provenant:limit:{key.pk}:{window}:{int(start.timestamp())}"

    def take_request(self, key: ConsumerKey, limit: int, start: datetime) -> bool:
        name = self._name(key, UsageWindow.MINUTE, start)
        with self.redis.pipeline() as pipe:
            used, _ = pipe.incr(name).expire(name, 120).execute()
        return used <= limit  # past the limit the counter still grows: harmless, it expires with its window

    def tokens_used(self, key: ConsumerKey, start: datetime) -> int:
        return int(self.redis.get(self._name(key, UsageWindow.DAY, start)) or 0)

    def add_tokens(self, key: ConsumerKey, tokens: int, start: datetime) -> None:
        name = self._name(key, UsageWindow.DAY, start)
        with self.redis.pipeline() as pipe:
            pipe.incrby(name, tokens).expire(name, 2 * 86400).execute()

    def forget_before(self, key: ConsumerKey, day_start: datetime) -> None:
        pass  # Redis expires them


@lru_cache(maxsize=4)
def _redis_counters(url: str) -> RedisCounters:
    return RedisCounters(url)


def counters():
    url = getattr(settings, "PROVENANT_REDIS_URL", "") or ""
    return _redis_counters(url) if url else DatabaseCounters()


def take_request(key: ConsumerKey, now: datetime | None = None) -> LimitHit | None:
    """Count this request against the key's limits; the limit it hits, or None. Also refuses a
    key whose tokens for the day are used up."""
    now = now or timezone.now()
    store = counters()
    day = _day_start(now)
    used = store.tokens_used(key, day)
    if used >= key.tokens_per_day:
        return LimitHit(f"This key has used its {key.tokens_per_day} tokens for today (UTC). The budget renews at midnight UTC.",
                        _seconds_until(day + timedelta(days=1), now))
    minute = _minute_start(now)
    if not store.take_request(key, key.requests_per_minute, minute):
        return LimitHit(f"This key may make {key.requests_per_minute} requests per minute. Wait for the next minute.",
                        _seconds_until(minute + timedelta(minutes=1), now))
    return None


def tokens_left_today(key: ConsumerKey, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return max(0, key.tokens_per_day - counters().tokens_used(key, _day_start(now)))


def add_tokens(key: ConsumerKey, tokens: int, now: datetime | None = None) -> None:
    if tokens <= 0:
        return
    now = now or timezone.now()
    store = counters()
    store.add_tokens(key, tokens, _day_start(now))
    if now.minute == 0:  # once in a while, drop this key's windows older than yesterday
        store.forget_before(key, _day_start(now))
