"""Routes for the outbox tests (loaded through OUTBOX_ROUTE_MODULES)."""

from outbox.routes import route

route("test.stock_added", "tests.outbox.handlers.add_stock")
route("test.fan_out", "tests.outbox.handlers.add_stock")
route("test.fan_out", "tests.outbox.handlers.add_stock_twice", queue="high")
route("test.rejected", "tests.outbox.handlers.reject")
