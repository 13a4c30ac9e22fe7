"""supervisord programs for the configured pools, in the two shapes
deployments use (``manage.py queue_topology --supervisord``):

- ``master``: one program, ``queue_supervise``, which runs every pool itself
  (balancing, restarts, drain) — Horizon's shape, seed 003;
- ``pools``: one program per pool (per queue for simple and auto pools), each
  an ``rqworker`` with the pool's flags and its own log file — seed 000/001's
  ``conecta-worker`` / ``conecta-worker-high``. supervisord cannot balance,
  so an auto pool gets its ``max_processes`` shared out, fixed.

Each program waits on stop for the longest job it can take, plus a margin,
before supervisord may kill it (queueing/drain.py).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from queueing.definitions import JobDefinition
from queueing.drain import STOPWAIT_MARGIN, longest_job
from queueing.supervisor.config import SupervisorConfig


@dataclass(frozen=True)
class Target:
    """Where the programs run: the checkout, its Python, the user, the log directory."""

    directory: str = "/srv/vito"
    python: str = "/srv/vito/.venv/bin/python"
    user: str | None = "vito"
    log_dir: str = "/var/log/vito"
    prefix: str = "vito"
    wrapper: str | None = "/srv/vito/devops/with-env"  # loads /etc/vito/env before the command


def _section(name: str, command: Sequence[str], target: Target, *, stopwait: int, log: str, **extra: Any) -> str:
    words = [target.wrapper, *command] if target.wrapper else list(command)
    lines = [
        f"[program:{name}]",
        f"command = {shlex.join(words)}",
        f"directory = {target.directory}",
    ]
    if target.user:
        lines.append(f"user = {target.user}")
    lines += [f"{key} = {value}" for key, value in extra.items()]
    lines += [
        "autostart = true",
        "autorestart = true",
        # SIGTERM lets the job in hand finish; only then may supervisord kill.
        "stopsignal = TERM",
        f"stopwaitsecs = {stopwait}",
        "redirect_stderr = true",
        f"stdout_logfile = {target.log_dir}/{log}",
    ]
    return "\n".join(lines) + "\n"


def _stopwait(
    configs: Sequence[SupervisorConfig],
    queues: Mapping[str, Mapping[str, Any]],
    jobs: Sequence[JobDefinition[Any, Any]],
) -> int:
    longest = longest_job(configs, queues, jobs)
    return (longest.drain if longest else 30) + STOPWAIT_MARGIN


def master_programs(
    configs: Sequence[SupervisorConfig],
    queues: Mapping[str, Mapping[str, Any]],
    jobs: Sequence[JobDefinition[Any, Any]],
    target: Target,
) -> str:
    pools = "; ".join(c.describe() for c in configs)
    header = f"; Every queue worker under one master (manage.py queue_supervise): {pools}\n"
    section = _section(
        f"{target.prefix}-queue-master",
        [target.python, "manage.py", "queue_supervise"],
        target,
        stopwait=_stopwait(configs, queues, jobs),
        log="queue-master.log",
        # Only the master is signalled: it alone tells each worker when to stop.
        stopasgroup="false",
        killasgroup="false",
    )
    return header + section


def _program_name(target: Target, pool: str, queue: str | None) -> tuple[str, str]:
    """seed 000's names: the pool "default" is ``<prefix>-worker``, others ``<prefix>-worker-<pool>``."""
    suffix = "" if pool == "default" else f"-{pool}"
    if queue is not None and queue != pool:
        suffix += f"-{queue}"
    return f"{target.prefix}-worker{suffix}", f"worker{suffix}.log"


def _children(config: SupervisorConfig) -> list[tuple[tuple[str, ...], int, str | None]]:
    """(queues, processes, the queue a program is named after) per program of a pool."""
    if config.balance == "off":
        return [(config.queues, config.processes, None)]
    if config.balance == "simple":
        return [(qs, n, qs[0] if len(config.queues) > 1 else None) for qs, n in config.initial_pools().items() if n]
    share, extra = divmod(config.max_processes, len(config.queues))
    return [
        ((q,), max(config.min_processes, share + (1 if i < extra else 0)), q if len(config.queues) > 1 else None)
        for i, q in enumerate(config.queues)
    ]


def pool_programs(
    configs: Sequence[SupervisorConfig],
    queues: Mapping[str, Mapping[str, Any]],
    jobs: Sequence[JobDefinition[Any, Any]],
    target: Target,
) -> str:
    sections: list[str] = []
    names: list[str] = []
    for config in configs:
        for pool_queues, processes, named_after in _children(config):
            name, log = _program_name(target, config.name, named_after)
            command = [target.python, "manage.py", "rqworker", *pool_queues, *config.worker_flags()]
            if config.nice:
                command = ["nice", "-n", str(config.nice), *command]
            note = f"; pool {config.name}: {' then '.join(pool_queues)}, {processes} process(es)"
            if config.balance == "auto":
                note += f" (auto {config.min_processes}-{config.max_processes} under queue_supervise; fixed here)"
            sections.append(
                note
                + "\n"
                + _section(
                    name,
                    command,
                    target,
                    stopwait=_stopwait([config], queues, jobs),
                    log=log,
                    numprocs=processes,
                    process_name="%(program_name)s_%(process_num)02d",
                    stopasgroup="true",
                    killasgroup="true",
                )
            )
            names.append(name)
    group = f"[group:{target.prefix}-workers]\nprograms = {','.join(names)}\n"
    return "\n".join(sections) + "\n" + group
