"""Signed, expiring download links: ``/d/<token>/``.

The token is Django's signing of ``{kind, id, tenant, exp}`` with a salt per
purpose (``vito.download.<kind>``), so a link minted for an export cannot be
replayed as a report link. Apps register how to find the file for a kind
(``register_download("export", resolver)``) — the mechanism lives here, below
the apps that use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse


@dataclass(frozen=True)
class Download:
    path: str  # in default_storage
    filename: str
    content_type: str
    inline: bool = False  # shown in the browser (an image) rather than saved


Resolver = Callable[[int, int], Download | None]  # (object id, tenant id) -> file
_resolvers: dict[str, Resolver] = {}


def register_download(kind: str, resolver: Resolver) -> None:
    _resolvers[kind] = resolver


def _salt(kind: str) -> str:
    return f"vito.download.{kind}"


def download_token(*, kind: str, object_id: int, tenant_id: int, lifetime: int | None = None) -> str:
    seconds = settings.DOWNLOAD_LINK_LIFETIME if lifetime is None else lifetime
    payload = {"k": kind, "id": object_id, "t": tenant_id, "exp": int(time.time()) + seconds}
    return f"{kind}.{signing.dumps(payload, salt=_salt(kind), compress=True)}"


def download_url(*, kind: str, object_id: int, tenant_id: int, lifetime: int | None = None) -> str:
    token = download_token(kind=kind, object_id=object_id, tenant_id=tenant_id, lifetime=lifetime)
    return reverse("signed-download", args=[token])


class Gone(Exception):
    pass


def resolve_token(token: str) -> Download:
    """The file a token grants, or: BadSignature (tampered, 403), Gone (expired, 410), Http404."""
    kind, _, signed = token.partition(".")
    if kind not in _resolvers:
        raise signing.BadSignature("unknown download kind")
    payload = signing.loads(signed, salt=_salt(kind))
    if payload.get("k") != kind:
        raise signing.BadSignature("token minted for another purpose")
    if int(payload["exp"]) < time.time():
        raise Gone
    found = _resolvers[kind](int(payload["id"]), int(payload["t"]))
    if found is None or not default_storage.exists(found.path):
        raise Http404("this file no longer exists")
    return found


def signed_download(request: HttpRequest, token: str) -> HttpResponseBase:
    try:
        found = resolve_token(token)
    except signing.BadSignature:
        return HttpResponse("This link is not valid.", status=403, content_type="text/plain")
    except Gone:
        return HttpResponse("This link has expired; request a new one.", status=410, content_type="text/plain")
    response = FileResponse(
        default_storage.open(found.path, "rb"), as_attachment=not found.inline, filename=found.filename
    )
    response["Content-Type"] = found.content_type
    response["Cache-Control"] = "private, no-store"
    return response


def send_download_link(
    *, kind: str, object_id: int, tenant_id: int, to: str, template: str, subject: str, context: dict[str, Any]
) -> None:
    """E-mail a "your file is ready" message with a signed link to it (exports, reports).
    The template gets ``url`` (absolute) and ``hours`` (how long it works) besides ``context``."""
    from lib.mail import send_templated

    link = download_url(kind=kind, object_id=object_id, tenant_id=tenant_id)
    full = {**context, "url": settings.SITE_URL.rstrip("/") + link, "hours": settings.DOWNLOAD_LINK_LIFETIME // 3600}
    send_templated(template, full, subject=subject, to=[to])
