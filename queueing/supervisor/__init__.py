"""``manage.py queue_supervise``: one master process running the workers of
``QUEUE_SUPERVISORS`` (Laravel Horizon's master and supervisors).

Each supervisor is a set of queues and worker options; its processes are
``manage.py rqworker`` children grouped in pools:

- ``balance: "auto"``: one pool per queue (each child works ONE queue); every
  ``balance_cooldown`` seconds at most ``balance_max_shift`` processes move
  toward the queues with the most work (by estimated time to clear, or by
  depth), never below ``min_processes`` per queue nor above ``max_processes``
  in total;
- ``balance: "simple"``: one pool per queue, ``processes`` split evenly;
- ``balance: "off"``: one pool of ``processes`` children working all the
  queues in order.

Children recycle themselves (exit 0 at ``--max-jobs`` / ``--max-time`` /
``--memory`` or after ``queue_restart``) and the master starts a fresh one;
a child that dies is restarted (with a backoff when it keeps dying young).
SIGTERM/SIGINT or ``queue_terminate``: every child finishes its job in hand,
then the master exits 0, within ``QUEUE_SUPERVISOR_DRAIN`` seconds. Its state
is published every second in ``keys.SUPERVISOR_MASTERS`` (one field per
master, so several hosts can each run one) for the dashboard.

The package, one module per concern: ``config`` (QUEUE_SUPERVISORS),
``balancing`` (pure), ``children``, ``master``, and ``state`` (the only
reader and writer of the published masters' hash). docs/runtime.md.
"""

from queueing.supervisor.balancing import Decision, Plan, QueueLoad, balance, desired_processes, estimate_waits
from queueing.supervisor.children import Child, Observation, Pool, SupervisorRun, child_setup
from queueing.supervisor.config import SupervisorConfig, parse_drain, parse_supervisor, parse_supervisors
from queueing.supervisor.master import Master
from queueing.supervisor.state import request_terminate, supervisor_state

__all__ = [
    "Child",
    "Decision",
    "Master",
    "Observation",
    "Plan",
    "Pool",
    "QueueLoad",
    "SupervisorConfig",
    "SupervisorRun",
    "balance",
    "child_setup",
    "desired_processes",
    "estimate_waits",
    "parse_drain",
    "parse_supervisor",
    "parse_supervisors",
    "request_terminate",
    "supervisor_state",
]
