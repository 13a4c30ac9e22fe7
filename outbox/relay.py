"""The relay loop: wake on NOTIFY, drain, sleep; poll once a second anyway.

Why LISTEN/NOTIFY and not short polling: ``outbox.publish`` issues ``NOTIFY``
inside the publishing transaction, and PostgreSQL delivers it only when that
transaction commits — so the relay wakes within a millisecond or two of the
commit, never for a rolled-back message, and costs nothing while idle. The
one-second poll covers what NOTIFY cannot: messages whose ``available_at`` is
in the future, and notifications lost while the listening connection was down.

Redis losing its data (a restart without persistence, a flush, a failover to
an empty replica) loses the jobs of dispatched messages. The coroner finds
those on its 5-minute schedule; the relay finds them within seconds: it keeps
a sentinel key in Redis, and when the key is gone it runs a coroner pass that
sends every dispatched message whose jobs are gone again.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import psycopg
from django.db import close_old_connections, connection

from outbox.services import NOTIFY_CHANNEL, outbox_coroner_run, outbox_relay_drain

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
SENTINEL_KEY = "vito:outbox:sentinel"
SENTINEL_EVERY = 5.0  # seconds between checks that Redis still holds its data


def recover_if_redis_lost_data() -> int:
    """When the sentinel is gone, put it back and send lost deliveries again.

    SET NX makes the check and the repair one step: of several relays, one
    re-creates the key and runs the pass. Its absence at a relay's first start
    costs one harmless pass. Returns how many messages went back to pending.
    """
    from queueing.dispatch import redis_connection

    if not redis_connection().set(SENTINEL_KEY, "1", nx=True):
        return 0
    # dispatched_after=0: any dispatched message whose jobs are all gone is
    # lost now, not in 5 minutes; one still queued, retrying or running is not.
    report = outbox_coroner_run(dispatched_after=0, redispatch=True)
    if report.redispatched:
        log.warning("outbox relay: Redis lost its data; %d message(s) sent again", report.redispatched)
    return report.redispatched


def _listen() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    # Keepalives: a half-open listener would otherwise wait forever (the poll
    # would still deliver, but a second late).
    params.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
    return conn


class Relay:
    def __init__(self, *, batch_size: int = 500, per_job: int | None = None) -> None:
        self.batch_size = batch_size
        self.per_job = per_job  # messages per delivery job; None: OUTBOX_MESSAGES_PER_JOB
        self.stop = False
        self.moved = 0

    def _request_stop(self, *_: Any) -> None:
        self.stop = True

    def loop(self, *, max_time: float | None = None) -> int:
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        started = time.monotonic()
        next_sentinel_check = 0.0
        listener: psycopg.Connection[Any] | None = None
        while not self.stop and (max_time is None or time.monotonic() - started < max_time):
            try:
                if listener is None:
                    listener = _listen()
                if time.monotonic() >= next_sentinel_check:
                    recover_if_redis_lost_data()
                    next_sentinel_check = time.monotonic() + SENTINEL_EVERY
                self.moved += outbox_relay_drain(batch_size=self.batch_size, per_job=self.per_job)
                # Sleep until a commit notifies us, or the poll interval passes.
                for _ in listener.notifies(timeout=POLL_SECONDS, stop_after=1):
                    pass
            except (psycopg.Error, Exception) as exc:
                log.error("outbox relay: %s; retrying in 1s", exc)
                if listener is not None:
                    listener.close()
                listener = None
                close_old_connections()
                connection.close()
                time.sleep(1)
        if listener is not None:
            listener.close()
        return self.moved
