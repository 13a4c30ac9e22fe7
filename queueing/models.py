"""The failed-job ledger (Laravel's ``failed_jobs``), durable in PostgreSQL."""

from __future__ import annotations

from django.db import models


class FailedJob(models.Model):
    """A job that failed finally: exceptions, timeouts, abandoned jobs.

    ``SELECT count(*) FROM queueing_failedjob WHERE failed_at > now() - interval '1 hour'``
    is the monitoring query; the index on ``failed_at`` serves it.
    """

    job_id = models.CharField(max_length=64, unique=True)
    queue = models.CharField(max_length=64)
    job_name = models.CharField(max_length=255)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    exception_class = models.CharField(max_length=255)
    message = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=1)
    worker = models.CharField(max_length=255, blank=True)
    # No foreign key: queueing sits below the domain apps and must not import them.
    tenant_id = models.BigIntegerField(null=True, blank=True)
    failed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["failed_at"], name="failedjob_failed_at_idx"),
            models.Index(fields=["queue", "failed_at"], name="failedjob_queue_idx"),
            models.Index(fields=["job_name", "failed_at"], name="failedjob_name_idx"),
        ]
        permissions = [
            ("view_dashboard", "Can view the queue dashboard"),
            # Separate from viewing: retry, forget, flush, pause, unlock, replay change things.
            ("operate_dashboard", "Can act from the queue dashboard (retry, pause, flush, unlock, replay)"),
        ]

    def __str__(self) -> str:
        return f"{self.job_name} ({self.exception_class}) at {self.failed_at:%Y-%m-%d %H:%M:%S}"


class MetricSnapshot(models.Model):
    """Five minutes of job metrics for one queue, job or tenant (Horizon's
    snapshots), taken by ``queue_snapshot`` from the per-minute Redis counters.
    Kept QUEUE_METRICS_RETENTION_DAYS; the snapshot trims the rest."""

    class Scope(models.TextChoices):
        QUEUE = "queue"
        JOB = "job"
        TENANT = "tenant"

    period_start = models.DateTimeField()
    scope = models.CharField(max_length=8, choices=Scope.choices)
    name = models.CharField(max_length=255)
    jobs = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    runtime_avg_ms = models.FloatField(null=True, blank=True)
    runtime_p50_ms = models.FloatField(null=True, blank=True)
    runtime_p95_ms = models.FloatField(null=True, blank=True)
    wait_avg_ms = models.FloatField(null=True, blank=True)
    wait_p95_ms = models.FloatField(null=True, blank=True)
    depth = models.PositiveIntegerField(null=True, blank=True)  # queues: size when the snapshot ran

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "name", "period_start"], name="snapshot_unique_period"),
        ]
        indexes = [models.Index(fields=["period_start"], name="snapshot_period_idx")]

    def __str__(self) -> str:
        return f"{self.scope} {self.name} @ {self.period_start:%Y-%m-%d %H:%M}"


class AuditEntry(models.Model):
    """Who changed what from the operations console, and when."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)  # kept if the user is deleted
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=255, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.username} {self.action} {self.target} at {self.at:%Y-%m-%d %H:%M:%S}"


class AlertEvent(models.Model):
    """An alert that fired or resolved (e-mailed to operators and logged)."""

    class State(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    condition = models.CharField(max_length=128)  # e.g. "depth:default", "no_worker:high"
    state = models.CharField(max_length=8, choices=State.choices)
    message = models.TextField()
    value = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["condition", "at"], name="alert_condition_idx")]

    def __str__(self) -> str:
        return f"{self.condition} {self.state} at {self.at:%Y-%m-%d %H:%M:%S}"


class PurgeRun(models.Model):
    """One run of the retention purge (``purge`` / the nightly job): what went, per kind.

    ``results`` maps a kind to its figures (rows, bytes, files, file_bytes,
    oldest, orphans, orphan_bytes, skipped); a run cut into slices adds each
    slice's figures here. Dry runs change nothing, so they leave no row."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    clock = models.DateTimeField(help_text="The run's 'now': every cutoff is computed from it, once.")
    trigger = models.CharField(max_length=16)  # "schedule", "command"
    only = models.CharField(max_length=255, blank=True)  # comma-separated kinds; blank: all
    tenant = models.CharField(max_length=100, blank=True)  # a tenant's slug; blank: every tenant
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    results = models.JSONField(default=dict, blank=True)
    # Progress across slices: kinds walked to the end, and whether the orphan sweep ran.
    finished_kinds = models.JSONField(default=list, blank=True)
    swept = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"purge {self.pk} ({self.status}) at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def rows(self) -> int:
        return sum(int(figures.get("rows", 0)) for figures in self.results.values())

    @property
    def total_bytes(self) -> int:
        return sum(
            int(figures.get(key, 0))
            for figures in self.results.values()
            for key in ("bytes", "file_bytes", "orphan_bytes")
        )
