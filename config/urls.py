from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path


def healthz(_request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Readiness checks live in queue_health."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
