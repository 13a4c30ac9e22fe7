"""pytest plugin (loaded with ``-p tests.embedded`` before pytest-django).

With DATABASE_URL / REDIS_URL unset, the suite runs against embedded servers
in a throwaway data dir, started by the same mechanism as ``make run``
(config.embedded), and stopped and deleted when the session ends. With them
set, it uses those servers; Django creates its own ``test_…`` database and the
suite only touches the Redis database number in REDIS_URL.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Test-only outbox routes (test.* events), for this process and every worker,
# relay or scheduler subprocess the tests start.
os.environ.setdefault("OUTBOX_ROUTE_MODULES", "tests.outbox.routes")

_throwaway: Path | None = None
if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
    _throwaway = Path(tempfile.mkdtemp(prefix="vito-test-"))
    os.environ["VITO_VAR_DIR"] = str(_throwaway)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _throwaway is None:
        return
    from config import embedded

    embedded.release_services(_throwaway)
    shutil.rmtree(_throwaway, ignore_errors=True)
    shutil.rmtree(embedded.socket_dir(_throwaway), ignore_errors=True)
