"""Outbox routes for the chaos scenarios (loaded through OUTBOX_ROUTE_MODULES)."""

from outbox.routes import route

route("chaos.tally", "chaos.handlers.tally")
