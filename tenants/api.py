"""Tenant scoping for the API: every tenant-facing view takes the tenant explicitly."""

from __future__ import annotations

from django.http import Http404
from rest_framework.request import Request

from tenants.models import Tenant


def tenant_for(request: Request) -> Tenant:
    """The tenant this request acts for: the ``X-Tenant`` slug, or the user's only
    membership. Fails closed: a tenant the user is not a member of is a 404,
    indistinguishable from one that does not exist."""
    if request.user.pk is None:
        raise Http404("no tenant for an anonymous user")
    memberships = Tenant.objects.filter(members__user_id=request.user.pk)
    slug = request.headers.get("X-Tenant")
    if slug:
        tenant = memberships.filter(slug=slug).first()
    else:
        tenants = list(memberships[:2])
        tenant = tenants[0] if len(tenants) == 1 else None
    if tenant is None:
        raise Http404("no such tenant for this user (send X-Tenant: <slug> if you belong to several)")
    return tenant
