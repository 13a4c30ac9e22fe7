"""``/u/<token>/``: the unsubscribe link of every campaign e-mail.

GET shows a confirmation page (mail scanners and link previews follow GET
links, so GET never unsubscribes). POST unsubscribes: the page's button, and
RFC 8058 one-click unsubscribe, which mail clients send without a CSRF token
(the signed token is the credential). Unsubscribing twice is fine.
"""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from marketing.emails import read_unsubscribe_token
from marketing.models import Subscriber
from marketing.services import subscriber_unsubscribe

TEMPLATE = "marketing/unsubscribe.html"


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber_id, tenant_id = read_unsubscribe_token(token)
    except signing.BadSignature:
        # 403 like every other signed link here (/d/<token>/): the token is the
        # credential, and a forged or cut one is refused, not "bad input".
        return render(request, TEMPLATE, {"state": "invalid"}, status=403)
    subscriber = Subscriber.objects.select_related("tenant").filter(pk=subscriber_id, tenant_id=tenant_id).first()
    context = {"subscriber": subscriber, "tenant": subscriber.tenant if subscriber else None}
    if request.method == "POST":
        subscriber_unsubscribe(subscriber_id=subscriber_id, tenant_id=tenant_id)
        response = render(request, TEMPLATE, {**context, "state": "done"})
    elif subscriber is None or subscriber.unsubscribed_at is not None:
        # Already off the list (or the subscriber was deleted): nothing to confirm.
        response = render(request, TEMPLATE, {**context, "state": "done"})
    else:
        response = render(request, TEMPLATE, {**context, "state": "confirm"})
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to linked sites
    return response
