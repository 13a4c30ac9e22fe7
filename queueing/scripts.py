"""Lua scripts: each makes a multi-step change atomic in one round trip."""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.commands.core import Script

# Take the first job from the first non-empty queue (strict priority order),
# register it as started and return its hash — all at once, so a worker
# killed at any instant leaves the job either queued or visibly started
# (and then the reaper finds it), never in between.
# KEYS: queue keys..., then the matching started-registry keys.
# ARGV: now, score (expiry of the claim), worker name, started_at (RQ format),
#       execution id.
_CLAIM = """
local n = #KEYS / 2
for i = 1, n do
  local id = redis.call('LPOP', KEYS[i])
  while id do
    local jk = 'rq:job:' .. id
    if redis.call('EXISTS', jk) == 1 then
      local execution = ARGV[5]
      redis.call('ZADD', KEYS[n + i], ARGV[2], id .. ':' .. execution)
      redis.call('HSET', jk, 'status', 'started', 'started_at', ARGV[4], 'last_heartbeat', ARGV[4],
                 'worker_name', ARGV[3])
      redis.call('PERSIST', jk)
      redis.call('HSET', 'rq:worker:' .. ARGV[3], 'state', 'busy', 'current_job', id)
      return {i, id, execution, redis.call('HGETALL', jk)}
    end
    -- a job deleted while queued: skip it, as RQ does
    id = redis.call('LPOP', KEYS[i])
  end
end
return nil
"""

# Move due jobs from a ScheduledJobRegistry to their queue atomically, so two
# promoters (workers, scheduler) can never enqueue the same job twice.
# KEYS: scheduled registry, queue key. ARGV: now, max jobs.
_PROMOTE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('EXISTS', 'rq:job:' .. id) == 1 then
    redis.call('HSET', 'rq:job:' .. id, 'status', 'queued')
    redis.call('RPUSH', KEYS[2], id)
  end
end
return #ids
"""

# Delete a lock only if we still own it (its value is our token).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

_cache: dict[tuple[int, str], Script] = {}


def _script(conn: Redis, source: str) -> Script:
    key = (id(conn), source)
    if key not in _cache:
        _cache[key] = conn.register_script(source)
    return _cache[key]


def claim(conn: Redis, queue_keys: list[str], started_keys: list[str], args: list[Any]) -> Any:
    return _script(conn, _CLAIM)(keys=[*queue_keys, *started_keys], args=args)


def promote(conn: Redis, registry_key: str, queue_key: str, now: float, limit: int = 1000) -> int:
    return int(_script(conn, _PROMOTE)(keys=[registry_key, queue_key], args=[now, limit]))


def release(conn: Redis, key: str, token: str) -> bool:
    return bool(_script(conn, _RELEASE)(keys=[key], args=[token]))


def release_in(pipe: Any, key: str, token: str) -> None:
    """Queue a compare-and-delete of a lock on a pipeline (same round trip as the rest)."""
    _script(pipe, _RELEASE)(keys=[key], args=[token], client=pipe)
