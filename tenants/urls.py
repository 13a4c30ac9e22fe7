from django.urls import path

from tenants import webhook_endpoints as api

urlpatterns = [
    path("api/webhook-endpoints/", api.EndpointListView.as_view(), name="api-webhook-endpoints"),
    path("api/webhook-endpoints/<int:pk>/", api.EndpointDetailView.as_view(), name="api-webhook-endpoint-detail"),
    path(
        "api/webhook-endpoints/<int:pk>/rotate-secret/",
        api.RotateSecretView.as_view(),
        name="api-webhook-endpoint-rotate-secret",
    ),
    path(
        "api/webhook-endpoints/<int:pk>/deliveries/",
        api.DeliveryListView.as_view(),
        name="api-webhook-endpoint-deliveries",
    ),
    path("api/webhook-endpoints/<int:pk>/resend/", api.ResendView.as_view(), name="api-webhook-endpoint-resend"),
    path("api/webhook-endpoints/<int:pk>/recover/", api.RecoverView.as_view(), name="api-webhook-endpoint-recover"),
    path("api/webhook-event-types/", api.EventTypeListView.as_view(), name="api-webhook-event-types"),
]
