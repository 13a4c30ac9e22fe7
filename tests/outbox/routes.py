"""Routes for the outbox tests (loaded through OUTBOX_ROUTE_MODULES)."""

from outbox.routes import route

route("test.stock_added", "tests.outbox.handlers.add_stock")
route("test.fan_out", "tests.outbox.handlers.add_stock")
route("test.fan_out", "tests.outbox.handlers.add_stock_twice", queue="high")
route("test.rejected", "tests.outbox.handlers.reject")
# A handler that moved: jobs and inbox rows may still name its old path.
route("test.moved", "tests.outbox.handlers.add_stock", formerly=["tests.outbox.old_handlers.add_stock"])
