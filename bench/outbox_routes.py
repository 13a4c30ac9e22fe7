"""The benchmark's route: one no-op handler."""

from outbox.routes import route

route("bench.event", "bench.outbox_routes.noop")


def noop(event: object) -> None:
    return None
