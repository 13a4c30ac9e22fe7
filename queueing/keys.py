"""Every Redis key the job runtime owns, in one place (RQ's own keys stay RQ's)."""

from __future__ import annotations

PREFIX = "vito"

PAUSED_QUEUES = f"{PREFIX}:queues:paused"  # set of queue names workers skip
RESTART_SIGNAL = f"{PREFIX}:queues:restart"  # timestamp; workers started before it exit
REAPER_LOCK = f"{PREFIX}:reaper:lock"
HEARTBEAT = f"{PREFIX}:heartbeat"  # hash: queue -> last heartbeat job run (unix time)
HEARTBEAT_PROBES = f"{PREFIX}:heartbeat:probes"  # hash: queue -> JSON {"at", "results": {probe: error or ""}}
HEARTBEAT_EXTERNAL = f"{PREFIX}:heartbeat:external"  # SET NX: which heartbeat probes the providers this minute
SMOKE = f"{PREFIX}:smoke"  # hash: "<queue>:sent" -> "token@unix time", "<queue>:done" -> token


def claims(queue: str) -> str:
    """Our claim expiries (zset job_id:execution -> unix time). RQ's own
    StartedJobRegistry gets the same members with score +inf, for display
    only, so RQ's cleanup never settles our jobs behind the ledger's back."""
    return f"{PREFIX}:claims:{queue}"


def unique_lock(job_name: str, key: str) -> str:
    return f"{PREFIX}:unique:{job_name}:{key}"


UNIQUE_PATTERN = f"{PREFIX}:unique:*"


def recent_finished(queue: str) -> str:
    """The dashboard's recently finished jobs of one queue (capped list; queueing/recent.py)."""
    return f"{PREFIX}:recent:{queue}"


def overlap_lock(key: str) -> str:
    return f"{PREFIX}:overlap:{key}"


def rate_window(name: str, by: str, window: int) -> str:
    return f"{PREFIX}:ratelimit:{name}:{by}:{window}"


def throttle(key: str) -> str:
    return f"{PREFIX}:throttle:{key}"


def schedule_tick(entry: str, tick: int) -> str:
    return f"{PREFIX}:schedule:{entry}:{tick}"


# queue_supervise: every master's published state (hash: master name -> JSON,
# read by the dashboard; a field counts only while that master's
# supervisor_alive key, which expires, exists) and the terminate signal
# written by queue_terminate.
SUPERVISOR_MASTERS = f"{PREFIX}:supervisor:masters"
SUPERVISOR_TERMINATE = f"{PREFIX}:supervisor:terminate"


def supervisor_alive(master: str) -> str:
    return f"{PREFIX}:supervisor:alive:{master}"


def metrics_minute(minute: int) -> str:
    """Per-minute job counters (hash), written by workers in their settle round trip."""
    return f"{PREFIX}:metrics:{minute}"


def alert_state(notifier: str) -> str:
    """Alert conditions' state (hash: condition key -> JSON), one hash per notifier
    (``checks`` for the scheduled check, ``monitor`` for ``queue_monitor --notify``)."""
    return f"{PREFIX}:alerts:{notifier}"


ALERTS_LOCK = f"{PREFIX}:alerts:lock"  # one alert pass at a time, so no condition is e-mailed twice
