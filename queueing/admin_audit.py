"""An audit row for every change an operator makes anywhere under ``/admin/``.

The queue dashboard records its own actions with their details
(``queueing.dashboard.views``). Everything else an operator can change from
the admin — model edits and deletes, admin actions (retry failed jobs, replay
outbox messages, send a campaign …), django-rq's queue pages — is a POST that
succeeds; this middleware records those, so ``/admin/queueing/auditentry/``
answers "who changed what" for the whole console. Only the action's name and
the selected ids are kept, never the submitted values (passwords, secrets).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from lib.client_ip import audit_ip
from queueing.services import audit_record

SELECTED_KEPT = 100  # ids kept from a changelist selection


class AdminAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method == "POST" and _audited(request, response):
            selected = request.POST.getlist("_selected_action")
            audit_record(
                user=request.user,
                action=f"admin:{request.POST.get('action') or 'change'}"[:64],
                target=request.path,
                detail={"status": response.status_code, "selected": selected[:SELECTED_KEPT]} if selected else {},
                ip=audit_ip(request),
            )
        return response


def _audited(request: HttpRequest, response: HttpResponse) -> bool:
    admin = reverse("admin:index")
    if not request.path.startswith(admin) or response.status_code >= 400:
        return False
    login = reverse("admin:login")
    # Logging in or out changes nothing; the dashboard audits its own actions.
    if request.path.startswith((login, reverse("admin:logout"), reverse("queue_dashboard:index"))):
        return False
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return False
    # A refused request is sent to the login page: nothing was changed.
    return not str(response.get("Location", "")).startswith(login)
