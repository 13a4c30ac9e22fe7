"""Every Redis key the job runtime owns, in one place (RQ's own keys stay RQ's)."""

from __future__ import annotations

PREFIX = "vito"

PAUSED_QUEUES = f"{PREFIX}:queues:paused"  # set of queue names workers skip
RESTART_SIGNAL = f"{PREFIX}:queues:restart"  # timestamp; workers started before it exit
REAPER_LOCK = f"{PREFIX}:reaper:lock"
HEARTBEAT = f"{PREFIX}:heartbeat"  # hash: queue -> last heartbeat job run (unix time)
SMOKE = f"{PREFIX}:smoke"  # hash: queue -> "token:unix time" of the last smoke probe


def claims(queue: str) -> str:
    """Our claim expiries (zset job_id:execution -> unix time). RQ's own
    StartedJobRegistry gets the same members with score +inf, for display
    only, so RQ's cleanup never settles our jobs behind the ledger's back."""
    return f"{PREFIX}:claims:{queue}"


def unique_lock(job_name: str, key: str) -> str:
    return f"{PREFIX}:unique:{job_name}:{key}"


UNIQUE_PATTERN = f"{PREFIX}:unique:*"


def overlap_lock(key: str) -> str:
    return f"{PREFIX}:overlap:{key}"


def rate_window(name: str, by: str, window: int) -> str:
    return f"{PREFIX}:ratelimit:{name}:{by}:{window}"


def throttle(key: str) -> str:
    return f"{PREFIX}:throttle:{key}"


def schedule_tick(entry: str, tick: int) -> str:
    return f"{PREFIX}:schedule:{entry}:{tick}"


# queue_supervise: its published state (JSON string with a TTL, read by the
# dashboard) and the terminate signal written by queue_terminate.
SUPERVISOR_STATE = f"{PREFIX}:supervisor:state"
SUPERVISOR_TERMINATE = f"{PREFIX}:supervisor:terminate"


def metrics_minute(minute: int) -> str:
    """Per-minute job counters (hash), written by workers in their settle round trip."""
    return f"{PREFIX}:metrics:{minute}"
