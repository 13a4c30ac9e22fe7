"""One scheduler process living through simulated time.

``python -m chaos.sim_scheduler START SECONDS STEP SEED`` runs the real
``queueing.scheduler.run_pending`` over ``(START, START + SECONDS]`` in
jittered steps of about STEP seconds, as fast as it can, then exits. Two of
these at once, with different steps, race for every tick of the schedule.
"""

from __future__ import annotations

import os
import random
import sys

import django


def main(start: float, seconds: float, step: float, seed: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    import django_rq

    from chaos.schedule import ENTRIES
    from queueing.scheduler import run_pending

    conn = django_rq.get_connection("default")
    rng = random.Random(seed)  # noqa: S311 - reproducible steps, not cryptography
    now, fired = start, 0
    while now < start + seconds:
        until = min(start + seconds, now + rng.uniform(0.5, 1.5) * step)
        fired += len(run_pending(conn, ENTRIES, now, until))
        now = until
    print(f"fired {fired}", flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    start, seconds, step, seed = sys.argv[1:5]
    sys.exit(main(float(start), float(seconds), float(step), int(seed)))
