from django.contrib import admin
from django.http import HttpRequest


class VitoAdminSite(admin.AdminSite):
    site_header = "Vito Business OS — operators"
    site_title = "Vito operators"
    index_title = "Super-admin panel"

    def has_permission(self, request: HttpRequest) -> bool:
        # Operators only: plain staff accounts (e.g. tenant support) must not
        # see other tenants' data or queue controls. A later dashboard
        # permission widens this for the queue dashboard alone.
        user = request.user
        return bool(user.is_active and user.is_superuser)
