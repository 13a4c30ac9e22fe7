"""Who may open the queue dashboard, and from where they acted (for the audit log).

The admin site itself is superusers-only; the dashboard is wider on purpose
(an on-call engineer with ``queueing.view_dashboard`` needs it without the
power to edit tenants), so it has its own rule instead of the admin's.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

PERMISSION = "queueing.view_dashboard"
OPERATE_PERMISSION = "queueing.operate_dashboard"

View = Callable[..., HttpResponse]


def allowlist() -> set[str]:
    return {email.strip().lower() for email in settings.QUEUE_DASHBOARD_ALLOWLIST if email.strip()}


def can_view_dashboard(user: Any) -> bool:
    """Superusers or holders of the permission; when QUEUE_DASHBOARD_ALLOWLIST
    is set, only the e-mails on it (superusers included: the list is the
    stricter rule an operator chose for this deployment)."""
    if not (user.is_authenticated and user.is_active):
        return False
    allowed = allowlist()
    if allowed and (user.email or "").strip().lower() not in allowed:
        return False
    return bool(user.is_superuser or user.has_perm(PERMISSION))


def dashboard_access(view: View) -> View:
    """Anonymous: the admin's login page (then back here). Logged in without
    the right: 403, not the login page again, so nobody loops through it."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not can_view_dashboard(request.user):
            raise PermissionDenied("You may not open the queue dashboard.")
        return view(request, *args, **kwargs)

    return wrapper


def can_operate_dashboard(user: Any) -> bool:
    """Changing things (retry, forget, flush, pause, unlock, replay) takes more
    than viewing: superusers, or holders of ``queueing.operate_dashboard``."""
    return can_view_dashboard(user) and bool(user.is_superuser or user.has_perm(OPERATE_PERMISSION))


def dashboard_operate(view: View) -> View:
    """For the POST actions: the view rule, plus the operate permission (else 403)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if user.is_authenticated and can_view_dashboard(user) and not can_operate_dashboard(user):
            raise PermissionDenied("Viewing the queue dashboard does not include acting on it.")
        return dashboard_access(view)(request, *args, **kwargs)

    return wrapper
