from tests.queueing.conftest import workers  # noqa: F401 - the fixture, for browser tests too
