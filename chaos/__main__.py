"""``python -m chaos [pytest args]``: start this run's own PostgreSQL and
Redis, run the scenarios, print the table, stop the servers.

Examples::

    python -m chaos                      # every scenario (make chaos)
    python -m chaos -m fast              # the subset CI runs
    python -m chaos -k redis             # scenarios whose name mentions redis
    python -m chaos chaos/test_workers.py
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO

import pytest

from chaos.services import Services
from config import embedded


def _artifacts() -> tuple[Path, IO[str]]:
    """artifacts/chaos, or artifacts/chaos-<pid> while another run holds it."""
    root = Path(__file__).resolve().parent.parent / "artifacts"
    root.mkdir(exist_ok=True)
    for path in (root / "chaos", root / f"chaos-{os.getpid()}"):
        lock = open(f"{path}.lock", "w")  # noqa: SIM115 - held until the process exits
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return path, lock
    raise RuntimeError("unreachable: the per-pid directory is never locked by another run")


def main(argv: list[str]) -> int:
    artifacts, lock = _artifacts()
    os.environ["CHAOS_ARTIFACTS"] = str(artifacts)
    var = Path(tempfile.mkdtemp(prefix="vito-chaos-"))
    services = Services.create(var)
    print(f"chaos: PostgreSQL and Redis (port {services.redis_port}) in {var}", flush=True)  # noqa: T201
    try:
        services.start()
        os.environ.update(services.environ())
        # The outbox routes the scenarios publish to (and the test suite's).
        os.environ["OUTBOX_ROUTE_MODULES"] = "tests.outbox.routes,chaos.routes"
        # Secrets of this run only: the last scenario greps every log for them.
        os.environ.update(
            PAYMENT_WEBHOOK_SECRET="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            STRIPE_WEBHOOK_SECRET="whsec_" + secrets.token_hex(16),
            METRICS_TOKEN=secrets.token_urlsafe(24),
            SECRET_KEY=secrets.token_urlsafe(50),
        )
        # Paths given on the command line replace the default (the whole package).
        targets = [] if any(Path(arg.split("::")[0]).exists() for arg in argv) else ["chaos"]
        return int(pytest.main([*targets, "-p", "no:cacheprovider", *argv]))
    finally:
        services.stop()
        shutil.rmtree(var, ignore_errors=True)
        shutil.rmtree(embedded.socket_dir(var), ignore_errors=True)
        lock.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
