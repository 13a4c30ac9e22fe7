"""Calls from the voice agent (Retell): ``call_started`` records the call,
``call_ended`` / ``call_analyzed`` run the call-ended work — in the one
transaction of the event's processing, so a failure rolls all of it back and
the job retries: find or create the customer by phone, read the requested
service and time from the post-call analysis, book (or record why not), and
store the call's outcome. docs/appointments.md lists the analysis fields the
agent must extract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from appointments.models import Appointment, Call, Service
from appointments.services.booking import Unavailable, appointment_book
from appointments.services.customers import customer_find_or_create
from webhooks.models import WebhookEvent
from webhooks.providers.retell import ENDED, CallReport, parse_call

SOURCE = Appointment.Source.VOICE
# The post-call analysis fields (Retell "custom_analysis_data") we read.
WANTS = "appointment_requested"
SERVICE = "service"
START = "appointment_start"
NAME = "customer_name"
EMAIL = "customer_email"

Outcome = Call.Outcome


def _upsert(tenant_id: int, report: CallReport) -> Call:
    """The call's row, locked; what this event says is merged in (a later
    event never blanks what an earlier one told us)."""
    call, _ = Call.objects.select_for_update().get_or_create(tenant_id=tenant_id, call_id=report.call_id)
    for field, limit in (
        ("agent_id", 100),
        ("direction", 16),
        ("from_number", 32),
        ("to_number", 32),
        ("call_status", 32),
        ("summary", None),
    ):
        value = getattr(report, field)
        if value:
            setattr(call, field, value[:limit])
    call.started_at = report.started_at or call.started_at
    call.ended_at = report.ended_at or call.ended_at
    if report.analysis is not None:
        call.analysis = report.analysis
    call.save()
    return call


def _text(analysis: dict[str, Any], key: str) -> str:
    value = analysis.get(key)
    return value.strip() if isinstance(value, str) else ""


def _requested_start(analysis: dict[str, Any]) -> datetime | None:
    raw = analysis.get(START)
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else None


def _service(tenant_id: int, analysis: dict[str, Any]) -> Service | None:
    name = analysis.get(SERVICE)
    if not isinstance(name, str) or not name.strip():
        return None
    return Service.objects.filter(tenant_id=tenant_id, active=True, name__iexact=name.strip()).order_by("pk").first()


def _decide(call: Call, outcome: str, detail: str) -> str:
    call.outcome, call.outcome_detail = outcome, detail[:500]
    call.save(update_fields=["outcome", "outcome_detail", "customer", "appointment", "updated_at"])
    return f"call {call.call_id}: {outcome}" + (f" ({detail})" if detail else "")


def call_process(*, tenant_id: int, event_type: str, report: CallReport) -> str:
    call = _upsert(tenant_id, report)
    if event_type not in (ENDED, "call_analyzed"):
        return f"call {call.call_id}: recorded ({event_type})"
    if call.outcome != Outcome.PENDING:
        return f"call {call.call_id}: already decided ({call.outcome})"
    if report.analysis is None:
        return f"call {call.call_id}: ended; waiting for its analysis"
    analysis = report.analysis
    name, email = _text(analysis, NAME), _text(analysis, EMAIL)
    caller = call.from_number if call.direction != "outbound" else call.to_number
    if caller or email:
        call.customer = customer_find_or_create(tenant_id=tenant_id, name=name, email=email, phone=caller)
    if analysis.get(WANTS) is not True:
        return _decide(call, Outcome.NO_REQUEST, "")
    service = _service(tenant_id, analysis)
    if service is None:
        return _decide(call, Outcome.UNKNOWN_SERVICE, f"no active service named {str(analysis.get(SERVICE))[:100]!r}")
    starts_at = _requested_start(analysis)
    if starts_at is None:
        return _decide(call, Outcome.INVALID_REQUEST, f"{START} is not an ISO 8601 time with an offset")
    try:
        appointment = appointment_book(
            tenant_id=tenant_id,
            customer=call.customer,
            customer_name=(call.customer.name if call.customer else "") or name or caller,
            customer_email=(call.customer.email if call.customer else "") or email,
            service=service,
            service_name=service.name,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=service.duration_minutes),
            source=SOURCE,
        )
    except Unavailable as exc:
        return _decide(call, exc.reason, str(exc))
    call.appointment = appointment
    return _decide(call, Outcome.BOOKED, f"appointment {appointment.pk}")


def call_handle(event: WebhookEvent) -> str:
    """The handler of Retell's call_* events (registered in appointments/apps.py)."""
    return call_process(tenant_id=int(event.account), event_type=event.type, report=parse_call(event.payload))
