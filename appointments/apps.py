from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    name = "appointments"

    def ready(self) -> None:
        from functools import partial

        from appointments.services import NOTIFY_EVENT, provider_account
        from appointments.services.calendar import calendar_handle
        from appointments.services.calls import call_handle
        from outbox.routes import route
        from webhooks.providers import calcom, register_accounts, register_handler, retell

        # Confirmations and notices, sent by the outbox delivery itself.
        route(NOTIFY_EVENT, "appointments.handlers.appointment_notify", queue="notifications", timeout=60, tries=3)

        # The calendar and the voice agent: a URL per tenant, the tenant's own secrets.
        register_accounts(calcom.NAME, partial(provider_account, calcom.NAME))
        register_accounts(retell.NAME, partial(provider_account, retell.NAME))
        for trigger in (calcom.CREATED, calcom.CANCELLED, calcom.RESCHEDULED):
            # A payload missing what its trigger needs is a 400 at intake, not a failed event.
            register_handler(
                calcom.NAME, trigger, calendar_handle, validate=lambda v: calcom.parse_booking(v.event_type, v.body)
            )
        for event in (retell.STARTED, retell.ENDED, retell.ANALYZED):
            register_handler(retell.NAME, event, call_handle)

        # Outbound webhooks: bookings, cancellations and moves, for tenants' endpoints.
        from appointments.event_types import EVENT_TYPES
        from webhooks.outbound.catalog import register_event_type

        for outbound_type in EVENT_TYPES:
            register_event_type(outbound_type)
