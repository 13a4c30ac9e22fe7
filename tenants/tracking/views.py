"""The public endpoints, ``/t/<tenant>/pixel.gif`` and ``/t/<tenant>/r/<code>``,
bound to the Redis connection they count and buffer through (a callable, so
tests hand them a real Redis of their own). docs/tracking.md."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed, HttpResponseRedirect
from redis import Redis
from redis.exceptions import RedisError

from lib.client_ip import client_ip
from tenants.tracking.hits import (
    PIXEL,
    WINDOW,
    Miss,
    Target,
    bucket_of,
    cached_target,
    default_redis,
    limited,
    load_target,
    packed_hit,
    record_hit,
    redis_failed,
    too_many,
    utm_of,
    with_utm,
)

# One logger for the whole feature, as before the split (operators grep for it).
log = logging.getLogger("tenants.tracking")


class Tracker:
    """The two views, bound to a Redis connection (resolved per request)."""

    def __init__(self, redis: Callable[[], Redis] = default_redis) -> None:
        self.redis = redis

    def _track(self, request: HttpRequest, slug: str, code: str | None) -> Target | HttpResponse | None:
        """Count and buffer one hit; the target, None when unknown, or a 429 response.
        Without Redis the hit is neither counted nor recorded, and the target still
        comes from the caches or PostgreSQL: the page and the campaign link work."""
        ip = client_ip(request)
        bucket = bucket_of(ip)
        window = int(time.time()) // WINDOW
        if limited.get(bucket) == window:
            return too_many()
        try:
            return self._count(request, slug, code, ip, bucket, window)
        except RedisError as exc:
            redis_failed(exc)
        target = cached_target(slug, code)
        return load_target(slug, code) if isinstance(target, Miss) else target

    def _count(
        self, request: HttpRequest, slug: str, code: str | None, ip: str, bucket: str, window: int
    ) -> Target | HttpResponse | None:
        conn = self.redis()
        record = request.method == "GET"  # a HEAD (link checkers, prefetch) counts against the limit, records nothing
        target = cached_target(slug, code)
        if isinstance(target, Miss):
            # Not known to this process yet: count the hit before the query, so a
            # flood of made-up slugs or codes is limited before it reaches PostgreSQL.
            if not record_hit(conn, bucket, window, None, count=True):
                return too_many()
            loaded = load_target(slug, code)
            if loaded is not None and record:
                record_hit(conn, bucket, window, packed_hit(conn, request, ip, loaded, code), count=False)
            return loaded
        packed = packed_hit(conn, request, ip, target, code) if target is not None and record else None
        if not record_hit(conn, bucket, window, packed, count=True):
            return too_many()
        return target

    def pixel(self, request: HttpRequest, tenant: str) -> HttpResponseBase:
        """``GET /t/<tenant>/pixel.gif``: the GIF, always (an unknown or inactive
        tenant's pixel records nothing, but an image tag never breaks a page), or 429."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        outcome = self._track(request, tenant, None)
        if isinstance(outcome, HttpResponse):
            return outcome
        response = HttpResponse(PIXEL, content_type="image/gif")
        response["Cache-Control"] = "no-store"  # every open is a request, never a cached image
        return response

    def redirect(self, request: HttpRequest, tenant: str, code: str) -> HttpResponseBase:
        """``GET /t/<tenant>/r/<code>``: 302 to the link's stored destination plus the
        request's utm parameters; an unknown tenant or code is a 404. The target is
        only ever the stored URL (http/https, validated), never one from the request."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        outcome = self._track(request, tenant, code)
        if isinstance(outcome, HttpResponse):
            return outcome
        if outcome is None:
            return HttpResponse(b"Not found\n", status=404, content_type="text/plain")
        response = HttpResponseRedirect(with_utm(outcome.destination, utm_of(request)))
        response["Cache-Control"] = "no-store"  # a cached redirect would skip the next click's count
        return response


# The URLconf's views: the queues' Redis connection.
tracker = Tracker()
pixel = tracker.pixel
redirect = tracker.redirect
