from django.apps import AppConfig


class QueueingConfig(AppConfig):
    name = "queueing"

    def ready(self) -> None:
        from django.core import checks

        from queueing.checks import drain_covers_jobs, queues_are_routed, retention_days_are_known

        checks.register(drain_covers_jobs, "queueing")
        checks.register(queues_are_routed, "queueing")
        checks.register(retention_days_are_known, "queueing")

        # Heartbeats and probes reach alerts, the dashboard, /metrics and
        # queue_health as a status provider, like the outbox's figures.
        from queueing import heartbeat, status

        status.register("health", heartbeat.status_report)
        heartbeat.register_probe("smtp", heartbeat.probe_smtp)

        # What the nightly purge may delete of ours (queueing/retention/, docs/retention.md).
        from django.conf import settings

        from queueing.models import AlertEvent, AuditEntry, FailedJob, MetricSnapshot
        from queueing.retention import Kind, register_kind

        register_kind(
            Kind(
                "failed_jobs",
                FailedJob,
                "failed_at",
                default_days=30,
                description="failed-job ledger rows (a row being retried right now is locked and skipped)",
                tenant_field="tenant_id",
            )
        )
        register_kind(Kind("audit_entries", AuditEntry, "at", default_days=365, description="operator audit trail"))
        register_kind(Kind("alert_events", AlertEvent, "at", default_days=90, description="alerts fired and resolved"))
        register_kind(
            Kind(
                "metric_snapshots",
                MetricSnapshot,
                "period_start",
                default_days=settings.QUEUE_METRICS_RETENTION_DAYS,
                description="job metrics history (the snapshot also trims it every 5 minutes)",
            )
        )
