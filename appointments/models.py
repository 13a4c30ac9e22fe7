"""Bookings (seed 002, AskProAI): per tenant, customers, staff members and the
services they offer; appointments with their history; phone calls taken by
the voice agent; the notifications sent about appointments; and the
tenant's provider secrets. docs/appointments.md."""

from __future__ import annotations

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, RangeBoundary, RangeOperators
from django.db import models
from django.db.models import Func, Q

from tenants.models import Tenant


class TsTzRange(Func):
    """``tstzrange(starts_at, ends_at, '[)')``: the half-open time an appointment holds."""

    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class Customer(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="customers")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    # E.164 ("+4930123456"), normalised by appointments.phones; "" when unknown.
    phone = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One customer per number per tenant: a caller is found again, never duplicated.
            models.UniqueConstraint(fields=["tenant", "phone"], condition=~Q(phone=""), name="customer_tenant_phone"),
        ]
        indexes = [models.Index(fields=["tenant", "email"], name="customer_tenant_email_idx")]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"customer {self.pk}"


class Service(models.Model):
    """What can be booked (a calendar's "event type")."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=200)
    duration_minutes = models.PositiveSmallIntegerField(default=30)
    # The calendar provider's event type id, so its bookings find the service.
    external_id = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"], condition=~Q(external_id=""), name="service_tenant_external"
            ),
            models.CheckConstraint(condition=Q(duration_minutes__gt=0), name="service_duration_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class StaffMember(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="staff")
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    # The calendar provider's user id of this person (a booking's organizer).
    external_id = models.CharField(max_length=100, blank=True)
    services = models.ManyToManyField(Service, blank=True, related_name="staff")
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"], condition=~Q(external_id=""), name="staff_tenant_external"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OpeningHours(models.Model):
    """When a tenant takes bookings from the voice agent and the API, per
    weekday (0 = Monday), in UTC. A tenant with no rows takes any time."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(
        choices=[(i, d) for i, d in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])]
    )
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        verbose_name_plural = "opening hours"
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=models.F("opens")), name="hours_close_after_open"),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="hours_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M} UTC"


class Appointment(models.Model):
    class Status(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        NO_SHOW = "no_show", "No-show"

    class Source(models.TextChoices):
        CALENDAR = "calendar", "Calendar"
        VOICE = "voice", "Voice call"
        API = "api", "API"
        ADMIN = "admin", "Admin"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="appointments")
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="appointments"
    )
    staff = models.ForeignKey(
        StaffMember, on_delete=models.SET_NULL, null=True, blank=True, related_name="appointments"
    )
    service = models.ForeignKey(Service, on_delete=models.SET_NULL, null=True, blank=True, related_name="appointments")
    # What was booked and by whom, as at booking time (what the e-mails say,
    # whatever later happens to the service or customer row).
    service_name = models.CharField(max_length=200)
    customer_name = models.CharField(max_length=200)
    customer_email = models.EmailField(blank=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BOOKED)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN)
    # The 24-hour reminder's stamp (seed 002's reminder_sent_at); every
    # notification, this one included, is recorded in Notification.
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="appointment_ends_after_start"),
            # No staff member is ever double-booked, whatever the entry point:
            # PostgreSQL refuses the second of two overlapping live bookings,
            # even when both are inserted at the same instant.
            ExclusionConstraint(
                name="appointment_staff_no_overlap",
                expressions=[
                    ("staff", RangeOperators.EQUAL),
                    (TsTzRange("starts_at", "ends_at", RangeBoundary()), RangeOperators.OVERLAPS),
                ],
                condition=Q(staff__isnull=False) & ~Q(status="cancelled"),
            ),
        ]
        indexes = [
            # The 24-hour reminder: "starts soon, not yet reminded" touches only un-reminded rows.
            models.Index(
                fields=["starts_at"],
                condition=Q(reminder_sent_at__isnull=True) & ~Q(status="cancelled"),
                name="appt_unreminded_starts_idx",
            ),
            models.Index(fields=["tenant", "starts_at"], name="appt_tenant_starts_idx"),
            # The 2-hour reminder's scan: live bookings by start.
            models.Index(fields=["starts_at"], condition=Q(status="booked"), name="appt_booked_starts_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.service_name} for {self.customer_name} at {self.starts_at:%Y-%m-%d %H:%M}"


class ExternalBooking(models.Model):
    """A provider's id for an appointment (a Cal.com booking uid). A reschedule
    gives the booking a new uid: both then point at the one appointment, so
    events about either find it, in whatever order they arrive."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=16, choices=Appointment.Source.choices)
    uid = models.CharField(max_length=200)
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="external_ids")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "source", "uid"], name="external_booking_unique")]

    def __str__(self) -> str:
        return f"{self.source} {self.uid}"


class AppointmentChange(models.Model):
    """The history of an appointment: booked, cancelled, moved (with the old time)."""

    class Kind(models.TextChoices):
        BOOKED = "booked", "Booked"
        CANCELLED = "cancelled", "Cancelled"
        RESCHEDULED = "rescheduled", "Rescheduled"
        STATUS = "status", "Status changed"

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Appointment.Source.choices)
    at = models.DateTimeField(auto_now_add=True)
    old_starts_at = models.DateTimeField(null=True, blank=True)
    old_ends_at = models.DateTimeField(null=True, blank=True)
    new_starts_at = models.DateTimeField(null=True, blank=True)
    new_ends_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"


class Call(models.Model):
    """A phone call the voice agent took, and what came of it."""

    class Outcome(models.TextChoices):
        PENDING = "pending", "In progress / awaiting analysis"
        BOOKED = "booked", "Appointment booked"
        SLOT_TAKEN = "slot_taken", "Slot taken"
        OUTSIDE_HOURS = "outside_hours", "Outside opening hours"
        UNKNOWN_SERVICE = "unknown_service", "Unknown service"
        NO_REQUEST = "no_request", "No booking requested"
        INVALID_REQUEST = "invalid_request", "Booking request unreadable"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calls")
    call_id = models.CharField(max_length=100)
    agent_id = models.CharField(max_length=100, blank=True)
    direction = models.CharField(max_length=16, blank=True)
    from_number = models.CharField(max_length=32, blank=True)
    to_number = models.CharField(max_length=32, blank=True)
    call_status = models.CharField(max_length=32, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True)
    analysis = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    outcome_detail = models.CharField(max_length=500, blank=True)
    customer = models.ForeignKey(Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls")
    appointment = models.ForeignKey(Appointment, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "call_id"], name="call_tenant_call_id")]
        indexes = [models.Index(fields=["tenant", "created_at"], name="call_tenant_created_idx")]

    def __str__(self) -> str:
        return f"call {self.call_id}"


class Notification(models.Model):
    """One message about an appointment. The row is the claim: it is inserted
    in the transaction that sends the message, under a unique key, so each
    (appointment, kind, start time) goes out once — a concurrent sender waits
    on the key and then finds it taken; a failed send rolls the row back."""

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Confirmation"
        REMINDER_24H = "reminder_24h", "Reminder 24 h before"
        REMINDER_2H = "reminder_2h", "Reminder 2 h before"
        CANCELLATION = "cancellation", "Cancellation notice"
        RESCHEDULE = "reschedule", "Reschedule notice"

    class Status(models.TextChoices):
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Skipped"

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The appointment's start this message is about: a moved appointment's new
    # time is a new key (fresh reminders), its old time's rows stay as history.
    starts_at = models.DateTimeField()
    channel = models.CharField(max_length=16, default="email")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENT)
    at = models.DateTimeField()
    # Where it went, or why it was skipped.
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["appointment", "kind", "starts_at"], name="notification_once"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"


class ProviderSecret(models.Model):
    """A tenant's secret for one provider, encrypted (Fernet, keyed from
    SECRET_KEY). Rotation adds a new one and gives the old ones a deadline:
    until it, events signed with either are accepted."""

    class Provider(models.TextChoices):
        CALENDAR = "calcom", "Calendar webhook secret (Cal.com)"
        VOICE = "retell", "Voice-agent API key (Retell)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="provider_secrets")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    ciphertext = models.TextField()
    # The secret's last four characters: enough for an operator to tell two apart.
    hint = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "provider"], name="secret_tenant_provider_idx")]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} …{self.hint}"
