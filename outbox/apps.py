from importlib import import_module

from django.apps import AppConfig
from django.conf import settings


class OutboxConfig(AppConfig):
    name = "outbox"

    def ready(self) -> None:
        # Extra route registrations (plugins, tests) named in settings; domain
        # apps register theirs in their own AppConfig.ready.
        for module in getattr(settings, "OUTBOX_ROUTE_MODULES", []):
            import_module(module)
        from outbox.status import outbox_status
        from queueing.status import register

        register("outbox", outbox_status)
