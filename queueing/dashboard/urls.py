"""/admin/queues/…: included before the admin's own URLs (see config/urls.py)."""

from __future__ import annotations

from django.urls import path

from queueing.dashboard import views

app_name = "queue_dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("live/", views.live, name="live"),
    path("failed/<int:pk>/", views.failed_detail, name="failed-detail"),
    path("failed/retry/", views.failed_retry, name="retry"),
    path("failed/forget/", views.failed_forget, name="forget"),
    path("failed/flush/", views.failed_flush, name="flush"),
    path("queues/<str:queue>/pause/", views.queue_pause, name="pause"),
    path("queues/<str:queue>/continue/", views.queue_continue, name="continue"),
    path("locks/release/", views.lock_release, name="unlock"),
    path("panels/<str:provider>/<str:action>/", views.panel_action, name="panel-action"),
]
