"""Abuse from outside, over real HTTP against gunicorn: one tenant reaching for
another's objects, forged and foreign signed links, people who are not
operators at the queue dashboard and the admin, a client rotating forged
``X-Forwarded-For`` headers to dodge the tracking rate limit, and the
production settings of ``.env.example`` under ``manage.py check --deploy``.

Each case counts what changed for the victim (rows, files, jobs, audit
entries) instead of trusting status codes alone. The URL lists come from the
URL resolver, so an endpoint added later fails here until it is covered.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.views import APIView

from analytics.models import MonthlyReport
from appointments.models import Appointment, Customer, Service, StaffMember
from chaos.cluster import Cluster, Web
from marketing.emails import UNSUBSCRIBE_SALT, unsubscribe_token
from marketing.models import Campaign, CampaignDelivery, Subscriber
from orders.models import Product, SalesExport
from outbox.models import OutboxMessage
from queueing import control
from queueing.dispatch import get_queue
from queueing.models import AuditEntry, FailedJob
from queueing.services import FailureRecord, failed_job_record
from tenants import tracking
from tenants.downloads import download_token
from tenants.models import ErasureRequest, Tenant, TenantDailyStats, TenantMember, TrackedLink
from tests.factories import ProductFactory, TenantFactory
from webhooks.outbound.models import Delivery, EndpointSecret, OutboundMessage, WebhookEndpoint
from webhooks.outbound.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 15  # seconds, every request
PASSWORD = "correct horse battery staple"  # noqa: S105 - test accounts of a throwaway database


# --------------------------------------------------------------------------- HTTP with cookies


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def location(self) -> str:
        return str(self.headers.get("Location", ""))


@dataclass
class Browser:
    """One client of the server: its own cookies and (for the rate limit) its
    own loopback address, 127.0.0.x, which the server sees as REMOTE_ADDR."""

    port: int
    source: str = "127.0.0.1"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT, source_address=(self.source, 0))
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body or None, headers=sent)
            response = conn.getresponse()
            reply = Reply(response.status, response.msg, response.read())
        finally:
            conn.close()
        for raw in reply.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(raw).items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return reply

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post_form(self, path: str, form: dict[str, Any] | None = None, *, csrf: str | None = "cookie") -> Reply:
        """POST a form; ``csrf``: "cookie" sends the csrftoken cookie's value as
        the token (what Django's forms do), None sends none, else that value."""
        data = dict(form or {})
        if csrf == "cookie":
            data["csrfmiddlewaretoken"] = self.cookies.get("csrftoken", "")
        elif csrf is not None:
            data["csrfmiddlewaretoken"] = csrf
        body = urlencode(data, doseq=True).encode()
        return self.request("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})


def login(web: Web, user: User) -> Browser:
    """A real session: the admin's login form, its CSRF cookie, the session cookie."""
    browser = Browser(web.port)
    assert browser.get("/admin/login/").status in (200, 302)
    assert "csrftoken" in browser.cookies
    done = browser.post_form("/admin/login/", {"username": user.username, "password": PASSWORD, "next": "/admin/"})
    assert done.status == 302, done.body[:500]
    assert "sessionid" in browser.cookies
    return browser


def anonymous_with_csrf(web: Web) -> Browser:
    browser = Browser(web.port)
    browser.get("/admin/login/")
    return browser


@pytest.fixture(scope="module")
def password_hash() -> str:
    # One PBKDF2 hash for every account (the hash carries its salt): hashing
    # once per user would cost most of this file's runtime.
    return make_password(PASSWORD)


def make_user(password_hash: str, *, staff: bool = False, superuser: bool = False, perms: tuple[str, ...] = (),
              email: str = "") -> User:  # fmt: skip
    name = f"u{uuid.uuid4().hex[:10]}"
    user = User.objects.create(username=name, email=email or f"{name}@example.com", password=password_hash,
                               is_staff=staff or superuser, is_superuser=superuser)  # fmt: skip
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="queueing", codename=codename))
    return user


# --------------------------------------------------------------------------- URL introspection


def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for item in patterns:
        if isinstance(item, URLResolver):
            yield from walk(item.url_patterns, prefix + str(item.pattern))
        else:
            yield prefix + str(item.pattern), item


def sample_path(route: str) -> str:
    """A concrete path for a route or regex (parameters filled with samples)."""
    path = re.sub(r"\(\?P<\w+>[^)]*\)\??", "tok", route)  # regex groups first: they contain <name>
    path = re.sub(r"<int:[^>]+>", "0", path)
    path = re.sub(r"<path:[^>]+>", "x/y", path)
    path = re.sub(r"<(str:|slug:)?[^>]+>", "x", path)
    path = path.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    return "/" + path


def view_class(pattern: URLPattern) -> type[Any]:
    found = getattr(pattern.callback, "cls", None) or getattr(pattern.callback, "view_class", None)
    assert found is not None, f"{pattern}: cannot tell its methods (not a class-based view)"
    return found  # type: ignore[no-any-return]


def methods(cls: type[Any]) -> list[str]:
    return [m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)]


# --------------------------------------------------------------------------- 1. tenant isolation

# Every /api/ route with an id, and the kind of object the id names. A new
# route fails test_tenant_isolation until it is listed here (and so attacked).
API_ID_ROUTES = {
    "api/exports/<int:export_id>/": "export",
    "api/products/<int:product_id>/image/": "product",
    "api/reports/<int:report_id>/": "report",
    "api/reports/<int:report_id>/thumbnail/": "report",
    "api/privacy/erase/<int:erasure_id>/": "erasure",
    "api/campaigns/<int:campaign_id>/": "campaign",
    "api/campaigns/<int:campaign_id>/send/": "campaign",
    "api/appointments/<int:pk>/": "appointment",
    # (appointments/urls.py lists the move before the cancel: the controls run
    # them in URL order on A's own appointment, and a cancelled one cannot move.)
    "api/appointments/<int:pk>/reschedule/": "appointment",
    "api/appointments/<int:pk>/cancel/": "appointment",
    "api/customers/<int:pk>/": "customer",
    "api/services/<int:pk>/": "service",
    "api/staff/<int:pk>/": "staff",
    "api/webhook-endpoints/<int:pk>/": "webhook_endpoint",
    "api/webhook-endpoints/<int:pk>/rotate-secret/": "webhook_endpoint",
    "api/webhook-endpoints/<int:pk>/deliveries/": "webhook_endpoint",
    "api/webhook-endpoints/<int:pk>/resend/": "webhook_endpoint",
    "api/webhook-endpoints/<int:pk>/recover/": "webhook_endpoint",
}
# /api/ routes without an id that act for the requesting tenant.
API_TENANT_ROUTES = {
    "api/exports/",
    "api/reports/",
    "api/analytics/",
    "api/privacy/erase/",
    "api/appointments/",
    "api/customers/",
    "api/services/",
    "api/staff/",
    "api/webhook-endpoints/",
    "api/webhook-event-types/",
}
# /api/ routes with no tenant data at all (why, for the reader).
API_PUBLIC_ROUTES = {
    "api/webhooks/payments/": "signed by the payment provider; no tenant session",
    "api/webhooks/stripe/": "signed by Stripe; no tenant session",
    "api/webhooks/calendar/<slug:account>/": "signed with the tenant's calendar secret; no tenant session",
    "api/webhooks/voice/<slug:account>/": "signed with the tenant's voice-agent key; no tenant session",
    "api/schema/": "the API's description",
}


@dataclass
class Objects:
    tenant: Tenant
    token: str
    ids: dict[str, int]
    link_code: str


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _tenant_with_objects(password_hash: str, label: str) -> Objects:
    tenant = TenantFactory.create(slug=f"sec-{label}-{uuid.uuid4().hex[:6]}")
    user = make_user(password_hash)
    TenantMember.objects.create(tenant=tenant, user=user, role=TenantMember.Role.OWNER)
    today = timezone.localdate()
    export = SalesExport.objects.create(tenant=tenant, date_from=today, date_to=today, email=user.email)
    product = ProductFactory.create(tenant=tenant, stock_quantity=5)
    report = MonthlyReport.objects.create(tenant=tenant, month=today.replace(day=1) - timedelta(days=1))
    campaign = Campaign.objects.create(tenant=tenant, subject=f"{label} news", body="Hello")
    Subscriber.objects.create(tenant=tenant, email=f"reader@{tenant.slug}.example.com")
    for back in range(1, 4):
        TenantDailyStats.objects.create(tenant=tenant, date=today - timedelta(days=back),
                                        views=111 if label == "a" else 999_001)  # fmt: skip
    link = TrackedLink.objects.create(tenant=tenant, code=f"go-{label}", destination=f"https://{label}.example.com/")
    erasure = ErasureRequest.objects.create(tenant=tenant, visitor="0123456789abcdef")
    service = Service.objects.create(tenant=tenant, name=f"{label} cut", duration_minutes=30)
    staff = StaffMember.objects.create(tenant=tenant, name=f"{label} staff")
    customer = Customer.objects.create(tenant=tenant, name=f"{label} customer", email=f"c@{tenant.slug}.example.com")
    start = timezone.now() + timedelta(days=5)
    appointment = Appointment.objects.create(
        tenant=tenant, customer=customer, service=service, staff=staff, customer_name=customer.name,
        service_name=service.name, starts_at=start, ends_at=start + timedelta(minutes=30),
    )  # fmt: skip
    # An outbound endpoint with one failed delivery (so resend and recover have work).
    hook, _ = endpoint_create(tenant_id=tenant.pk, url=f"https://93.184.216.34/{label}", event_types=["order.paid"])
    message = OutboundMessage.objects.create(
        msg_id=f"msg_chaos_{label}", tenant_id=tenant.pk, event_type="order.paid", payload={"data": {}}
    )
    Delivery.objects.create(message=message, endpoint=hook, status=Delivery.Status.FAILED, attempts=8)
    ids = {
        "webhook_endpoint": hook.pk,
        "export": export.pk,
        "product": product.pk,
        "report": report.pk,
        "campaign": campaign.pk,
        "erasure": erasure.pk,
        "appointment": appointment.pk,
        "customer": customer.pk,
        "service": service.pk,
        "staff": staff.pk,
    }
    return Objects(tenant, Token.objects.create(user=user).key, ids, link.code)


def _tenant_state(tenant: Tenant) -> dict[str, Any]:
    """Everything of the tenant's that an API call could change, plus the
    shared side effects (outbox, queued jobs, stored files)."""
    media = Path(settings.MEDIA_ROOT)
    return {
        "exports": list(SalesExport.objects.filter(tenant=tenant).order_by("pk").values()),
        "reports": list(MonthlyReport.objects.filter(tenant=tenant).order_by("pk").values()),
        "campaigns": list(Campaign.objects.filter(tenant=tenant).order_by("pk").values()),
        "deliveries": CampaignDelivery.objects.filter(campaign__tenant=tenant).count(),
        "products": list(Product.objects.filter(tenant=tenant).order_by("pk").values()),
        "stats": list(TenantDailyStats.objects.filter(tenant=tenant).order_by("pk").values()),
        "erasures": list(ErasureRequest.objects.filter(tenant=tenant).order_by("pk").values()),
        "appointments": list(Appointment.objects.filter(tenant=tenant).order_by("pk").values()),
        "customers": list(Customer.objects.filter(tenant=tenant).order_by("pk").values()),
        "services": list(Service.objects.filter(tenant=tenant).order_by("pk").values()),
        "staff": list(StaffMember.objects.filter(tenant=tenant).order_by("pk").values()),
        "webhook_endpoints": list(WebhookEndpoint.objects.filter(tenant_id=tenant.pk).order_by("pk").values()),
        "endpoint_secrets": list(EndpointSecret.objects.filter(endpoint__tenant_id=tenant.pk).order_by("pk").values()),
        "webhook_deliveries": list(Delivery.objects.filter(endpoint__tenant_id=tenant.pk).order_by("pk").values()),
        "outbox": OutboxMessage.objects.count(),
        "queued": get_queue("default").count + get_queue("high").count,
        "files": sorted(str(p) for p in media.rglob("*") if p.is_file()) if media.exists() else [],
    }


def _api_request(web: Web, method: str, path: str, token: str, tenant_slug: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Token {token}"}
    if tenant_slug:
        headers["X-Tenant"] = tenant_slug
    body = b""
    if method in ("PUT", "PATCH"):
        boundary = "chaos" + uuid.uuid4().hex
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nrenamed\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="url"\r\n\r\nhttps://93.184.216.34/moved\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="enabled"\r\n\r\ntrue\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + _png()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    elif method == "POST":
        month = (timezone.localdate().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        today = timezone.localdate().isoformat()
        # One body for every POST: each view reads its own fields (a move lands 10 days ahead).
        moved = (timezone.now() + timedelta(days=10)).isoformat()
        # A resend names A's failed message; a recover starts a day back.
        since = (timezone.now() - timedelta(days=1)).isoformat()
        body = json.dumps(
            {"month": month, "date_from": today, "date_to": today, "format": "csv", "starts_at": moved, "reason": "x",
             "msg_id": "msg_chaos_a", "since": since}
        ).encode()  # fmt: skip
        headers["Content-Type"] = "application/json"
    return web.request(method, path, body=body, headers=headers, timeout=TIMEOUT)


def _api_routes() -> tuple[dict[str, URLPattern], dict[str, URLPattern]]:
    """(/api/ routes with an id, tenant routes without one); fails on any route not classified."""
    with_id: dict[str, URLPattern] = {}
    without: dict[str, URLPattern] = {}
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.lstrip("^").startswith("api/"):
            continue
        if route in API_PUBLIC_ROUTES:
            continue
        if pattern.pattern.regex.groups:
            assert route in API_ID_ROUTES, f"{route} takes an id: add it to API_ID_ROUTES (and so to this attack)"
            with_id[route] = pattern
        else:
            assert route in API_TENANT_ROUTES, f"{route}: classify it in API_TENANT_ROUTES or API_PUBLIC_ROUTES"
            without[route] = pattern
    assert set(with_id) == set(API_ID_ROUTES), f"routes gone: {set(API_ID_ROUTES) - set(with_id)}"
    return with_id, without


@pytest.mark.fast
def test_tenant_isolation(cluster: Cluster, record, password_hash: str) -> None:  # type: ignore[no-untyped-def]
    with_id, without = _api_routes()
    a, b = _tenant_with_objects(password_hash, "a"), _tenant_with_objects(password_hash, "b")
    web = cluster.web()
    missing = 10**9
    before = _tenant_state(b.tenant)
    wrong: list[str] = []
    attempts = 0

    for route, pattern in with_id.items():
        kind = API_ID_ROUTES[route]
        for method in methods(view_class(pattern)):
            foreign, absent = (re.sub(r"<[^>]+>", str(n), "/" + route) for n in (b.ids[kind], missing))
            for header in (None, b.tenant.slug):  # A's own context, and A claiming B's
                attempts += 1
                status, body = _api_request(web, method, foreign, a.token, header)
                absent_status, absent_body = _api_request(web, method, absent, a.token, header)
                if status != 404:
                    wrong.append(f"{method} {foreign} X-Tenant={header}: {status} {body[:200]!r}")
                elif (absent_status, absent_body) != (status, body):
                    wrong.append(f"{method} {foreign}: tells B's id from a missing one: {body!r} vs {absent_body!r}")
    # Routes without an id: acting with X-Tenant of a tenant A is not a member of.
    for route, pattern in without.items():
        for method in methods(view_class(pattern)):
            attempts += 1
            status, body = _api_request(web, method, "/" + route, a.token, b.tenant.slug)
            if status != 404:
                wrong.append(f"{method} /{route} X-Tenant={b.tenant.slug}: {status} {body[:200]!r}")
    # A's own figures carry none of B's rows.
    status, body = _api_request(web, "GET", "/api/analytics/", a.token)
    figures = json.loads(body) if status == 200 else {}
    days = figures.get("days") or [{"views": None}]
    if status != 200 or figures.get("tenant") != a.tenant.slug or any(d["views"] != 111 for d in days):
        wrong.append(f"GET /api/analytics/ as A: {status} {body[:300]!r}")
    # The public redirect: A's slug with B's link code is no way to B's destination.
    tracked = web.request("GET", f"/t/{a.tenant.slug}/r/{b.link_code}", timeout=TIMEOUT)[0]
    if tracked != 404:
        wrong.append(f"/t/{a.tenant.slug}/r/{b.link_code}: {tracked}")
    changed_b = [key for key, value in _tenant_state(b.tenant).items() if value != before[key]]

    # Controls: the same calls on A's own ids work, and B's own member reaches
    # B's objects, so the 404s above are isolation, not a broken endpoint.
    controls = []
    deletes = []  # run last: they take A's object away from the other controls
    for route, pattern in with_id.items():
        kind = API_ID_ROUTES[route]
        for method in methods(view_class(pattern)):
            path = re.sub(r"<[^>]+>", str(a.ids[kind]), "/" + route)
            if method == "DELETE":
                deletes.append(path)
                continue
            controls.append((method, path, _api_request(web, method, path, a.token)[0]))
        if "GET" in methods(view_class(pattern)):
            path = re.sub(r"<[^>]+>", str(b.ids[kind]), "/" + route)
            controls.append(("GET as B", path, _api_request(web, "GET", path, b.token)[0]))
    own_redirect = web.request("GET", f"/t/{b.tenant.slug}/r/{b.link_code}", timeout=TIMEOUT)[0]
    controls += [("DELETE", path, _api_request(web, "DELETE", path, a.token)[0]) for path in deletes]

    load = f"{len(with_id) + len(without)} API URLs, {attempts} cross-tenant calls, 2 tenants"
    record("tenant isolation (API)", load=load, fault="tenant A asks for B's ids / X-Tenant: B",
           lost="–", duplicated="–")  # fmt: skip
    assert not wrong, "\n".join(wrong)
    assert not changed_b, f"tenant B changed: {changed_b}"
    assert all(status in (200, 202, 204) for _, _, status in controls), controls
    assert own_redirect == 302


# --------------------------------------------------------------------------- 2. signed links


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


def _signing_uses() -> set[str]:
    """Product modules that use django.core.signing (not tests, not this suite)."""
    base = Path(settings.BASE_DIR)
    skip = {"tests", "chaos", "var", "artifacts", "node_modules"}
    tops = [p for p in base.iterdir() if p.is_dir() and p.name not in skip and not p.name.startswith(".")]
    found = set()
    for path in [*base.glob("*.py"), *(f for top in tops for f in top.rglob("*.py"))]:
        text = path.read_text(errors="replace")
        if re.search(r"django\.core\.signing|from django\.core import signing|TimestampSigner", text):
            found.add(path.relative_to(base).as_posix())
    return found


# Every module that signs or checks signatures, and the link it serves. A new
# one fails test_signed_links until its links are attacked here too.
SIGNING_MODULES = {
    "tenants/downloads.py": "/d/<token>/",
    "marketing/emails.py": "/u/<token>/",
    "marketing/views.py": "/u/<token>/",
}


@pytest.mark.fast
def test_signed_links(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    assert _signing_uses() == set(SIGNING_MODULES), "a module signs something new: attack its links here"
    old_key = secrets.token_urlsafe(50)
    cluster.extra_env["SECRET_KEY_FALLBACKS"] = old_key  # links signed before a key rotation keep working
    tenant = TenantFactory.create()
    content = b"number,total\nT-1,10.00\n"
    name = default_storage.save(f"exports/chaos-{uuid.uuid4().hex}.csv", ContentFile(content))
    today = timezone.localdate()
    export = SalesExport.objects.create(tenant=tenant, date_from=today, date_to=today, format="csv",
                                        status=SalesExport.Status.DONE, file=name)  # fmt: skip
    subscriber, other = (Subscriber.objects.create(tenant=tenant, email=f"{n}@example.com") for n in ("s", "o"))
    web = cluster.web()

    token = download_token(kind="export", object_id=export.pk, tenant_id=tenant.pk)
    kind, _, signed = token.partition(".")
    payload = {"k": "export", "id": export.pk, "t": tenant.pk, "exp": int(time.time()) + 3600}
    download_cases = {
        "signature changed": _flip(token, len(token) - 3),
        "payload changed": _flip(token, len(kind) + 3),
        "cut short": token[:-4],
        "garbage": "export.nonsense",
        "export link as a report link": f"report.{signed}",
        "report salt, claims export": "report." + signing.dumps(payload | {"k": "export"}, salt="vito.download.report"),
        "unsubscribe token": "export." + unsubscribe_token(subscriber_id=export.pk, tenant_id=tenant.pk),
        "no salt": "export." + signing.dumps(payload),
        "unknown kind": "invoice." + signing.dumps(payload | {"k": "invoice"}, salt="vito.download.invoice"),
        "another key": "export." + signing.dumps(payload, key="not-our-key", salt="vito.download.export"),
    }
    expired = download_token(kind="export", object_id=export.pk, tenant_id=tenant.pk, lifetime=-5)
    rotated = "export." + signing.dumps(payload, key=old_key, salt="vito.download.export", compress=True)

    wrong: list[str] = []
    for case, bad in download_cases.items():
        status, body = web.request("GET", f"/d/{bad}/", timeout=TIMEOUT)
        if status != 403 or content in body:
            wrong.append(f"/d/ {case}: {status}")
    if (got := web.request("GET", f"/d/{expired}/", timeout=TIMEOUT))[0] != 410 or content in got[1]:
        wrong.append(f"/d/ expired: {got[0]}")
    for case, good in (("valid", token), ("signed with the previous key", rotated)):
        status, body = web.request("GET", f"/d/{good}/", timeout=TIMEOUT)
        if (status, body) != (200, content):
            wrong.append(f"/d/ {case}: {status}")

    sub_token = unsubscribe_token(subscriber_id=subscriber.pk, tenant_id=tenant.pk)
    value, _, signature = sub_token.rpartition(":")
    unsubscribe_cases = {
        "signature changed": _flip(sub_token, len(sub_token) - 3),
        "someone else's id": f"{other.pk}.{tenant.pk}:{signature}",
        "cut short": sub_token[:-4],
        "garbage": "nonsense",
        "download token": token,
        "download salt": signing.Signer(salt="vito.download.export").sign(value),
        "no salt": signing.Signer().sign(value),
        "another key": signing.Signer(key="not-our-key", salt=UNSUBSCRIBE_SALT).sign(value),
    }
    one_click = {"Content-Type": "application/x-www-form-urlencoded"}
    for case, bad in unsubscribe_cases.items():
        asks = web.request("GET", f"/u/{bad}/", timeout=TIMEOUT)[0]
        posts = web.request("POST", f"/u/{bad}/", body=b"List-Unsubscribe=One-Click", headers=one_click,
                            timeout=TIMEOUT)[0]  # fmt: skip
        if (asks, posts) != (403, 403):
            wrong.append(f"/u/ {case}: GET {asks}, POST {posts}")
    unsubscribed_by_forgery = Subscriber.objects.filter(unsubscribed_at__isnull=False).count()
    # Controls: the real link asks on GET and unsubscribes on POST (one click, no CSRF token).
    asked = web.request("GET", f"/u/{sub_token}/", timeout=TIMEOUT)[0]
    still_subscribed = Subscriber.objects.get(pk=subscriber.pk).unsubscribed_at is None
    done = web.request("POST", f"/u/{sub_token}/", body=b"List-Unsubscribe=One-Click", headers=one_click,
                       timeout=TIMEOUT)[0]  # fmt: skip
    rotated_sub = signing.Signer(key=old_key, salt=UNSUBSCRIBE_SALT).sign(f"{other.pk}.{tenant.pk}")
    rotated_done = web.request("POST", f"/u/{rotated_sub}/", timeout=TIMEOUT)[0]

    cases = len(download_cases) + 3 + 2 * len(unsubscribe_cases) + 3
    record("signed links /d/ and /u/", load=f"{cases} links", fault="tampered, foreign salt or key, expired",
           lost="–", duplicated="–")  # fmt: skip
    assert not wrong, "\n".join(wrong)
    assert unsubscribed_by_forgery == 0
    assert (asked, still_subscribed, done, rotated_done) == (200, True, 200, 200)
    assert set(Subscriber.objects.filter(unsubscribed_at__isnull=False).values_list("pk", flat=True)) == {
        subscriber.pk,
        other.pk,
    }
    # The unsubscribe link never expires (README "Unsubscribe link"), so it has no 410 case.


# --------------------------------------------------------------------------- 3. dashboard and admin

DASHBOARD_PAGES = {"index", "live", "failed-detail"}
DASHBOARD_ACTIONS = {"retry", "forget", "flush", "pause", "continue", "unlock", "panel-action"}
LOCK_KEY = "vito:unique:chaos.security:1"


def _ledger(tag: str) -> FailedJob:
    row, _ = failed_job_record(
        record=FailureRecord(
            job_id=f"chaos-sec-{tag}-{uuid.uuid4().hex[:8]}",
            queue="default",
            job_name="chaos.jobs.slow_effect",
            args=[0, 0],
            kwargs={},
            exception_class="RuntimeError",
            message=f"{tag} broke",
            traceback="",
            attempts=1,
            worker="w1",
            tenant_id=None,
        )
    )
    return row


@dataclass
class Ops:
    """The state every dashboard action touches; compared before and after."""

    ledger: FailedJob
    forget: FailedJob
    old: FailedJob
    dead: OutboxMessage

    def state(self) -> dict[str, Any]:
        conn = get_queue("default").connection
        return {
            "ledger": sorted(FailedJob.objects.values_list("pk", flat=True)),
            "paused": sorted(control.paused_queues(conn)),
            "lock": bool(conn.exists(LOCK_KEY)),
            "dead": OutboxMessage.objects.filter(status=OutboxMessage.Status.DEAD).count(),
            "queued": get_queue("default").count,
            "audit": AuditEntry.objects.count(),
        }


def _ops_state() -> Ops:
    ops = Ops(_ledger("retry"), _ledger("forget"), _ledger("old"),
              OutboxMessage.objects.create(event_type="chaos.tally", aggregate_type="chaos", aggregate_id="1",
                                           payload={"product_id": 0}, status=OutboxMessage.Status.DEAD))  # fmt: skip
    FailedJob.objects.filter(pk=ops.old.pk).update(failed_at=timezone.now() - timedelta(hours=3))
    get_queue("default").connection.set(LOCK_KEY, "someone", ex=600)
    return ops


def _actions(ops: Ops) -> list[tuple[str, str, dict[str, Any], str]]:
    """(URL name, path, form, audit action), in the order an operator runs them."""
    return [
        ("retry", "/admin/queues/failed/retry/", {"scope": "selected", "ids": [ops.ledger.pk]}, "retry"),
        ("forget", "/admin/queues/failed/forget/", {"ids": [ops.forget.pk]}, "forget"),
        ("flush", "/admin/queues/failed/flush/", {"older_than_hours": "1"}, "flush"),
        ("pause", "/admin/queues/queues/default/pause/", {}, "pause"),
        ("continue", "/admin/queues/queues/default/continue/", {}, "continue"),
        ("unlock", "/admin/queues/locks/release/", {"key": LOCK_KEY}, "unlock"),
        ("panel-action", "/admin/queues/panels/outbox/replay_dead/", {}, "outbox.replay_dead"),
    ]


def _effect_done(name: str, ops: Ops, before: dict[str, Any], after: dict[str, Any]) -> bool:
    expected = {
        "retry": lambda: ops.ledger.pk not in after["ledger"] and after["queued"] == before["queued"] + 1,
        "forget": lambda: ops.forget.pk not in after["ledger"],
        "flush": lambda: ops.old.pk not in after["ledger"] and len(after["ledger"]) == len(before["ledger"]) - 1,
        "pause": lambda: after["paused"] == ["default"],
        "continue": lambda: after["paused"] == [],
        "unlock": lambda: not after["lock"],
        "panel-action": lambda: after["dead"] == before["dead"] - 1,
    }
    return bool(expected[name]())


def _dashboard_routes() -> dict[str, str]:
    routes = {
        pattern.name: route
        for route, pattern in walk(get_resolver().url_patterns)
        if route.startswith("admin/queues/") and pattern.name
    }
    unknown = set(routes) - DASHBOARD_PAGES - DASHBOARD_ACTIONS
    assert not unknown, f"new dashboard URLs {unknown}: classify them (page or action) and attack them here"
    return routes


def _django_rq_paths() -> list[str]:
    """A sample path for every django-rq view the admin serves (and our overrides of its API views)."""
    paths = []
    for route, _pattern in walk(get_resolver().url_patterns):
        if not re.match(r"\^?admin/django_rq/", route):
            continue
        path = sample_path(route)
        assert resolve(path).func is not None, (route, path)
        paths.append(path)
    assert any("stats.json" in p for p in paths) and any("empty" in p for p in paths), paths
    return sorted(set(paths))


def _login_redirect(reply: Reply) -> bool:
    return reply.status == 302 and reply.location.startswith("/admin/login/")


# Not in the fast subset: seven logins (a full PBKDF2 each) and two servers; the
# same rules are unit-tested in tests/queueing/test_dashboard.py.
def test_dashboard_and_admin_access(cluster: Cluster, record, password_hash: str) -> None:  # type: ignore[no-untyped-def]
    routes = _dashboard_routes()
    ops = _ops_state()
    actions = _actions(ops)
    assert {name for name, *_ in actions} == DASHBOARD_ACTIONS
    users = {
        "staff": make_user(password_hash, staff=True),
        "viewer": make_user(password_hash, staff=True, perms=("view_dashboard",)),
        "operator": make_user(password_hash, staff=True, perms=("view_dashboard", "operate_dashboard")),
        "superuser": make_user(password_hash, superuser=True),
        # On QUEUE_DASHBOARD_ALLOWLIST of the second server, in other letter case.
        "listed": make_user(password_hash, staff=True, perms=("view_dashboard", "operate_dashboard"),
                            email="on.call@example.com"),
    }  # fmt: skip
    web = cluster.web()
    # A second server whose list leaves out the operator and the superuser.
    cluster.extra_env["QUEUE_DASHBOARD_ALLOWLIST"] = "On.Call@Example.com, cto@example.com"
    listed_web = cluster.web()
    # Log in two at a time (one per gunicorn worker): each login is a full PBKDF2.
    with ThreadPoolExecutor(max_workers=2) as pool:
        sessions = dict(zip(users, pool.map(lambda user: login(web, user), users.values()), strict=True))
    browsers = {"anonymous": anonymous_with_csrf(web)} | sessions
    pages = ["/admin/queues/", "/admin/queues/live/", f"/admin/queues/failed/{ops.ledger.pk}/"]
    assert {resolve(p).url_name for p in pages} == DASHBOARD_PAGES
    wrong: list[str] = []
    calls = 0

    def expect(what: str, reply: Reply, ok: bool) -> None:
        nonlocal calls
        calls += 1
        if not ok:
            wrong.append(f"{what}: {reply.status} {reply.location or reply.body[:120]!r}")

    # Pages: login page for anonymous, 403 for staff without the permission, open to viewers and up.
    for path in pages:
        for role, browser in browsers.items():
            if role == "listed":
                continue  # the same rights as the operator; here for the allowlist below
            reply = browser.get(path)
            want = {"anonymous": _login_redirect(reply), "staff": reply.status == 403}.get(role, reply.status == 200)
            expect(f"{role} GET {path}", reply, want)

    # Actions: every refusal first, the state must not move; then the operator, one audit row each.
    before = ops.state()
    for name, path, form, _ in actions:
        assert resolve(path).url_name == name and name in routes
        expect(f"anonymous GET {path}", reply := browsers["anonymous"].get(path), _login_redirect(reply))
        expect(f"anonymous POST {path}", reply := browsers["anonymous"].post_form(path, form), _login_redirect(reply))
        anonymous_no_csrf = Browser(web.port).post_form(path, form, csrf=None)
        expect(f"anonymous POST {path} without CSRF", anonymous_no_csrf, anonymous_no_csrf.status == 403)
        for role in ("staff", "viewer"):
            expect(f"{role} GET {path}", reply := browsers[role].get(path), reply.status == 403)
            expect(f"{role} POST {path}", reply := browsers[role].post_form(path, form), reply.status == 403)
        operator = browsers["operator"]
        expect(f"operator GET {path}", reply := operator.get(path), reply.status == 405)
        expect(f"operator POST {path} without CSRF", reply := operator.post_form(path, form, csrf=None),
               reply.status == 403)  # fmt: skip
        forged = operator.post_form(path, form, csrf=secrets.token_hex(16))  # well-formed, wrong
        expect(f"operator POST {path} with a forged CSRF token", forged, forged.status == 403)
    refused_changed = ops.state() != before

    audits = []
    for name, path, form, action in actions:
        start = ops.state()
        reply = browsers["operator"].post_form(path, form)
        end = ops.state()
        entries = list(AuditEntry.objects.filter(action=action).values_list("username", flat=True))
        audits.append((name, reply.status, end["audit"] - start["audit"], entries))
        if reply.status != 302 or not _effect_done(name, ops, start, end):
            wrong.append(f"operator POST {path}: {reply.status}, effect missing ({start} -> {end})")
        if end["audit"] - start["audit"] != 1 or entries != [users["operator"].username]:
            wrong.append(f"operator POST {path}: audit {entries}")

    # The admin and django-rq's views: operators only (superusers); the rest get the login page.
    rq_paths = _django_rq_paths()
    for path in ["/admin/", "/admin/queueing/auditentry/", *rq_paths]:
        for role in ("anonymous", "staff", "viewer", "operator"):
            expect(f"{role} GET {path}", reply := browsers[role].get(path), _login_redirect(reply))
    superuser = browsers["superuser"]
    for path in ("/admin/", "/admin/queueing/auditentry/", "/admin/django_rq/dashboard/"):
        expect(f"superuser GET {path}", reply := superuser.get(path), reply.status == 200)
    # A state-changing django-rq view: GET only asks, POST needs the CSRF token.
    queue = get_queue("default")
    queue.enqueue("chaos.jobs.slow_effect", 0, 0)
    empty = f"/admin/django_rq/dashboard/queues/{sorted(settings.RQ_QUEUES).index('default')}/empty/"
    queued = queue.count
    expect(f"superuser GET {empty}", reply := superuser.get(empty), reply.status == 200 and queue.count == queued)
    expect(f"superuser POST {empty} without CSRF", reply := superuser.post_form(empty, csrf=None),
           reply.status == 403 and queue.count == queued)  # fmt: skip
    # Changes made elsewhere in the admin are audited too (queueing.admin_audit):
    # django-rq's "empty queue" and an admin action, one row each, by the superuser.
    admin_changes = []
    for path, form, done in (
        (empty, {}, lambda: queue.count == 0),
        ("/admin/queueing/failedjob/",
         {"action": "forget", "_selected_action": [str(FailedJob.objects.create(
             job_id="chaos", queue="default", job_name="chaos.jobs.poison", exception_class="E").pk)]},
         lambda: not FailedJob.objects.filter(job_id="chaos").exists()),
    ):  # fmt: skip
        audit_start = AuditEntry.objects.count()
        reply = superuser.post_form(path, form)
        rows = list(
            AuditEntry.objects.order_by("-id").values_list("username", "target")[
                : AuditEntry.objects.count() - audit_start
            ]
        )
        admin_changes.append((path, reply.status, done(), rows))
        if not (reply.status < 400 and done() and rows == [(users["superuser"].username, path)]):
            wrong.append(f"superuser POST {path}: {reply.status}, done={done()}, audit {rows}")

    # QUEUE_DASHBOARD_ALLOWLIST, on the second server: the same sessions (they
    # live in PostgreSQL), so the list is the only difference.
    for role in ("operator", "superuser"):
        browser = Browser(listed_web.port, cookies=dict(browsers[role].cookies))
        expect(f"unlisted {role} GET /admin/queues/", reply := browser.get("/admin/queues/"), reply.status == 403)
        reply = browser.post_form("/admin/queues/queues/default/pause/")
        expect(f"unlisted {role} POST pause", reply, reply.status == 403 and not ops.state()["paused"])
    listed_browser = Browser(listed_web.port, cookies=dict(browsers["listed"].cookies))
    expect("listed GET /admin/queues/", reply := listed_browser.get("/admin/queues/"), reply.status == 200)
    audit_before = AuditEntry.objects.count()
    reply = listed_browser.post_form("/admin/queues/queues/default/pause/")
    expect("listed POST pause", reply, reply.status == 302 and ops.state()["paused"] == ["default"])
    listed_audit = AuditEntry.objects.count() - audit_before
    control.queue_continue(get_queue("default").connection, "default")

    record("queue dashboard and admin access",
           load=f"{len(pages)} pages + {len(actions)} actions + {len(rq_paths) + 2} admin URLs, {calls} calls, "
                "2 servers (one with QUEUE_DASHBOARD_ALLOWLIST)",
           fault="anonymous, staff, viewer, no/forged CSRF, GET on actions, unlisted operator",
           lost="–", duplicated="–")  # fmt: skip
    assert not wrong, "\n".join(wrong)
    assert not refused_changed, "a refused request changed something"
    assert [a[2] for a in audits] == [1] * len(actions), audits
    assert listed_audit == 1


# --------------------------------------------------------------------------- 4. forged X-Forwarded-For

LIMIT = 20


def _fresh_window(needed: float = 5) -> None:
    """The limit counts fixed one-minute windows: start with enough of one left."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.1)


def _forged(n: int) -> dict[str, str]:
    address = f"203.0.{n // 250}.{n % 250 + 1}"
    return {"X-Forwarded-For": address, "X-Real-IP": address, "Forwarded": f"for={address}",
            "User-Agent": f"bot/{n}"}  # fmt: skip


def _hammer(web: Web, source: str, path: str, count: int) -> list[int]:
    browser = Browser(web.port, source=source)
    return [browser.get(path, headers=_forged(n)).status for n in range(count)]


def _drf_throttled_routes() -> list[str]:
    """Routes with a DRF throttle. None today (the API has none; webhooks have
    none on purpose, providers retry on their own schedule). DRF keys its
    throttles on X-Forwarded-For unless NUM_PROXIES is set, so one added later
    must set it, and get a hammer case like the tracking one."""
    throttled = []
    for route, pattern in walk(get_resolver().url_patterns):
        cls = getattr(pattern.callback, "cls", None)
        if cls is not None and issubclass(cls, APIView) and cls().get_throttles():
            throttled.append(route)
    return throttled


@pytest.mark.fast
def test_forged_forwarded_for_does_not_dodge_the_tracking_limit(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    throttled = _drf_throttled_routes()
    assert not throttled, f"{throttled}: hammer these with forged X-Forwarded-For too (and set NUM_PROXIES)"
    cluster.extra_env.update(TRACKING_RATE_LIMIT_PER_MINUTE=str(LIMIT), TRACKING_TRUSTED_PROXIES="")
    tenant = TenantFactory.create()
    TrackedLink.objects.create(tenant=tenant, code="spring", destination="https://shop.example.com/spring")
    conn = get_queue("default").connection
    web = cluster.web()
    hits = 3 * LIMIT
    for attempt in range(2):  # a run cut by a minute boundary is run again, from fresh addresses
        _fresh_window()
        window = int(time.time()) // 60
        start = int(conn.xlen(tracking.STREAM))
        pixel_ip, redirect_ip, bystander_ip = (f"127.0.0.{2 + 3 * attempt + n}" for n in range(3))
        # One real client per path (its own loopback address), a new forged address on every request.
        pixel = _hammer(web, pixel_ip, f"/t/{tenant.slug}/pixel.gif", hits)
        redirect = _hammer(web, redirect_ip, f"/t/{tenant.slug}/r/spring", hits)
        bystander = Browser(web.port, source=bystander_ip).get(f"/t/{tenant.slug}/pixel.gif", headers=_forged(999))
        buffered = int(conn.xlen(tracking.STREAM)) - start
        if int(time.time()) // 60 == window:
            break
    else:
        pytest.fail("both runs crossed a minute boundary (the machine is too slow for 121 requests in 5 s)")

    record("forged X-Forwarded-For vs tracking limit",
           load=f"{hits} pixel + {hits} redirect hits, limit {LIMIT}/min",
           fault="new forged XFF / X-Real-IP / Forwarded each hit, no trusted proxy (no other HTTP limit exists)",
           lost="–", duplicated="–")  # fmt: skip
    assert pixel == [200] * LIMIT + [429] * (hits - LIMIT), pixel
    assert redirect == [302] * LIMIT + [429] * (hits - LIMIT), redirect
    assert bystander.status == 200  # per client, not one global bucket
    assert buffered == 2 * LIMIT + 1  # refused hits were not recorded either


# --------------------------------------------------------------------------- 5. check --deploy

# The HTTPS lines .env.example asks production to uncomment.
TLS_PREFIXES = ("SECURE_", "CSRF_", "SESSION_COOKIE_", "BEHIND_TLS_PROXY", "SITE_URL")


def _env_example() -> dict[str, str]:
    """.env.example as production fills it in: its set values, its HTTPS lines
    uncommented, and real values for the placeholders."""
    values: dict[str, str] = {}
    for line in (Path(settings.BASE_DIR) / ".env.example").read_text().splitlines():
        found = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if not found:
            continue
        commented, name, value = found.groups()
        if commented and not name.startswith(TLS_PREFIXES):
            continue
        values[name] = re.sub(r"\s+#.*$", "", value).strip().strip('"')
    return values


@pytest.mark.fast
def test_check_deploy_passes_with_the_production_example(cluster: Cluster, record) -> None:  # type: ignore[no-untyped-def]
    example = _env_example()
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
                 "SECURE_HSTS_PRELOAD", "BEHIND_TLS_PROXY", "CSRF_TRUSTED_ORIGINS"):  # fmt: skip
        assert example.get(name), f".env.example no longer shows {name} for production"
    production = example | {
        "DEBUG": "0",
        "SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(48)).decode(),
        "ALLOWED_HOSTS": "vito.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://vito.example.com",
        "SITE_URL": "https://vito.example.com",
    }
    # The second run is the control: the check does read this environment (without HSTS it warns).
    envs = [cluster.env(**production), cluster.env(**(production | {"SECURE_HSTS_SECONDS": "0"}))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        done, without_hsts = pool.map(
            lambda env: cluster.run("check", "--deploy", "--fail-level", "WARNING", env=env), envs
        )

    record("manage.py check --deploy", load=f".env.example, {len(production)} values", fault="production settings",
           lost="–", duplicated="–")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout + done.stderr
    assert without_hsts.returncode != 0 and "security.W004" in without_hsts.stdout + without_hsts.stderr
