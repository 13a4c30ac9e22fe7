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
        permissions = [("view_dashboard", "Can view the queue dashboard")]

    def __str__(self) -> str:
        return f"{self.job_name} ({self.exception_class}) at {self.failed_at:%Y-%m-%d %H:%M:%S}"
