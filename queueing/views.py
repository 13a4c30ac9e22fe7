"""``/metrics``: Prometheus text exposition, for a scraper holding METRICS_TOKEN.

With METRICS_TOKEN unset the endpoint answers 503 and says so: the figures
(queue names, tenant ids, job names) are not public, and a scraper set up
without the token should show a clear reason, not an empty page.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from queueing.prometheus import registry


def _authorized(request: HttpRequest, tokens: list[str]) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    candidate = given.strip().encode()
    # Compare with every configured token (rotation), each in constant time, without stopping early.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token.encode())
    return matched


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    tokens = settings.METRICS_TOKEN.split()
    if not tokens:
        return HttpResponse(
            "/metrics is disabled: set METRICS_TOKEN and scrape with 'Authorization: Bearer <token>'.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    if not _authorized(request, tokens):
        response = HttpResponse(
            "Missing or wrong bearer token: send 'Authorization: Bearer <METRICS_TOKEN>'.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry()), content_type=content_type)
