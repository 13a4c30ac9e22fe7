from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class VitoAdminConfig(AdminConfig):
    """The operators' super-admin panel replaces Django's default admin site."""

    default_site = "config.admin_site.VitoAdminSite"


class ProjectConfig(AppConfig):
    """The composition root: commands that span every domain app live here
    (seed_demo, ensure_admin), so no domain app has to import its peers."""

    name = "config"
    label = "project"

    def ready(self) -> None:
        from django.core import checks

        from config.checks import supervisord_waits_for_drain

        checks.register(supervisord_waits_for_drain, "project")
