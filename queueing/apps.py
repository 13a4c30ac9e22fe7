from django.apps import AppConfig


class QueueingConfig(AppConfig):
    name = "queueing"

    def ready(self) -> None:
        from django.core import checks

        from queueing.checks import drain_covers_jobs, queues_are_routed

        checks.register(drain_covers_jobs, "queueing")
        checks.register(queues_are_routed, "queueing")

        # Heartbeats and probes reach alerts, the dashboard, /metrics and
        # queue_health as a status provider, like the outbox's figures.
        from queueing import heartbeat, status

        status.register("health", heartbeat.status_report)
        heartbeat.register_probe("smtp", heartbeat.probe_smtp)
