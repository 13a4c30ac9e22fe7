"""Faults installed into a real process from outside its code, so no
production signature carries a test-only switch.

    python -m chaos.faults crash-after-enqueue outbox_process [ARGS…]

runs ``manage.py outbox_process ARGS`` in this process with
``queueing.dispatch.enqueue_batch_rollback_unsafe`` wrapped: the first batch it enqueues is
followed by SIGKILL to the process itself — after the jobs are in Redis,
before the relay marks its rows dispatched and commits, the worst moment for
"exactly once" (the rollback must send them again; the inbox must absorb the
second copies). Used by tests/outbox and chaos/test_relay_scheduler.py.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

FAULTS = ("crash-after-enqueue",)


def _crash_after_enqueue() -> None:
    from queueing import dispatch

    original = dispatch.enqueue_batch_rollback_unsafe

    def enqueue_then_die(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result  # never reached

    dispatch.enqueue_batch_rollback_unsafe = enqueue_then_die


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in FAULTS:
        sys.stderr.write(f"usage: python -m chaos.faults {{{','.join(FAULTS)}}} COMMAND [ARGS…]\n")
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    _crash_after_enqueue()
    call_command(argv[1], *argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
