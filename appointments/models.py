from __future__ import annotations

from django.db import models
from django.db.models import Q

from tenants.models import Tenant


class Appointment(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="appointments")
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField()
    service = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="appointment_ends_after_start")
        ]
        indexes = [
            # SendAppointmentReminders: "starts in [now+23h, now+24h) and not yet
            # reminded" touches only un-reminded rows, in start order.
            models.Index(
                fields=["starts_at"],
                condition=Q(reminder_sent_at__isnull=True) & ~Q(status="cancelled"),
                name="appt_unreminded_starts_idx",
            ),
            models.Index(fields=["tenant", "starts_at"], name="appt_tenant_starts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.service} for {self.customer_name} at {self.starts_at:%Y-%m-%d %H:%M}"
