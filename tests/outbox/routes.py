"""Routes for the outbox tests (loaded through OUTBOX_ROUTE_MODULES)."""

from outbox.routes import route

route("test.stock_added", "tests.outbox.handlers.add_stock")
route("test.fan_out", "tests.outbox.handlers.add_stock")
route("test.fan_out", "tests.outbox.handlers.add_stock_twice", queue="high")
route("test.rejected", "tests.outbox.handlers.reject")
# A handler that moved: jobs and inbox rows may still name its old path.
route("test.moved", "tests.outbox.handlers.add_stock", formerly=["tests.outbox.old_handlers.add_stock"])
# Batches: a handler that fails on demand (3 tries), and a slow one whose
# one-second timeout lets a batch start messages for one second only.
route("test.flaky", "tests.outbox.handlers.add_stock_or_fail", tries=3)
route("test.once", "tests.outbox.handlers.add_stock_or_fail", tries=1)
route("test.slow", "tests.outbox.handlers.add_stock_slowly", timeout=1)
route("test.sleepy", "tests.outbox.handlers.add_stock_slowly")
route("test.unbatched", "tests.outbox.handlers.add_stock", batch=1)
