"""Lua scripts: each makes a multi-step change atomic in one round trip.

RQ's key names come in as arguments (``Job.redis_job_namespace_prefix``, the
worker's key), never written here: RQ_KEY_PREFIX renames them all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.commands.core import Script
from rq.job import Job
from rq.utils import utcformat

# Take the first job from the first non-empty queue (strict priority order),
# register it as claimed and started and return its hash — all at once, so a
# worker killed at any instant leaves the job either queued or visibly claimed
# (and then the reaper finds it), never in between.
# KEYS: queue keys..., started-registry keys..., claim zsets... (n each).
# ARGV: now, score (expiry of the claim), worker name, started_at (RQ format),
#       execution id, borrow limit ('' or seconds: from queue ARGV[7] on —
#       every queue after the worker's own first — take the head job only if
#       its timeout is at most this; a job with a longer, unlimited (-1) or
#       unknown timeout stays for the workers whose first queue that is, and
#       so does everything behind it), the index the limit starts at, RQ's job
#       key prefix (``rq:job:`` unless RQ_KEY_PREFIX says otherwise), the worker's key,
#       how many jobs to take at most (a worker with several free job threads
#       takes them in one call; they are the first ones, in queue order).
_CLAIM = """
local n = #KEYS / 3
local limit = tonumber(ARGV[6])
local limit_from = tonumber(ARGV[7]) or 2
local jp = ARGV[8]
local want = tonumber(ARGV[10]) or 1
local out = {}
-- The next job id of queue i (nil when none may be taken from it now).
local function pop(i)
  if limit and i >= limit_from then
    local id = redis.call('LINDEX', KEYS[i], 0)
    while id and redis.call('EXISTS', jp .. id) == 0 do
      redis.call('LPOP', KEYS[i])  -- a job deleted while queued: drop it, as below
      id = redis.call('LINDEX', KEYS[i], 0)
    end
    local t = id and tonumber(redis.call('HGET', jp .. id, 'timeout'))
    if id and t and t > 0 and t <= limit then
      return redis.call('LPOP', KEYS[i])
    end
    return nil
  end
  return redis.call('LPOP', KEYS[i])
end
for i = 1, n do
  local id = pop(i)
  while id do
    local jk = jp .. id
    -- Read before writing: an empty hash is a job deleted while queued (and
    -- the read replaces an EXISTS). The fields written below are returned as
    -- written, so the worker's copy matches the hash.
    local fields = redis.call('HGETALL', jk)
    if #fields > 0 then
      local execution = ARGV[5] .. 'x' .. (#out + 1)
      local member = id .. ':' .. execution
      redis.call('ZADD', KEYS[2 * n + i], ARGV[2], member)
      redis.call('ZADD', KEYS[n + i], 'inf', member)
      local started = {'status', 'started', 'started_at', ARGV[4], 'last_heartbeat', ARGV[4],
                       'worker_name', ARGV[3], 'vito_execution', execution, 'vito_failure', ''}
      redis.call('HSET', jk, unpack(started))
      redis.call('PERSIST', jk)
      for j = 1, #started do fields[#fields + 1] = started[j] end
      out[#out + 1] = {i, id, execution, fields}
      if #out >= want then break end
    end
    -- a job deleted while queued is skipped, as RQ does
    id = pop(i)
  end
  if #out >= want then break end
end
if #out == 0 then return nil end
redis.call('HSET', ARGV[9], 'state', 'busy', 'current_job', out[#out][2])
return out
"""

# Move due jobs from a ScheduledJobRegistry to their queue atomically, so two
# promoters (workers, scheduler) can never enqueue the same job twice.
# The job's enqueued_at becomes the moment it was due, so its wait (enqueue →
# start) measures queueing, not the delay it asked for.
# KEYS: scheduled registry, queue key. ARGV: now, max jobs, now as RQ's utcformat, RQ's job key prefix.
_PROMOTE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('EXISTS', ARGV[4] .. id) == 1 then
    redis.call('HSET', ARGV[4] .. id, 'status', 'queued', 'enqueued_at', ARGV[3])
    redis.call('RPUSH', KEYS[2], id)
  end
end
return #ids
"""

# The reaper takes over an expired claim (pushes its expiry forward) before
# settling it, so two reapers can never settle the same attempt; a reaper that
# dies mid-way leaves a claim that expires again. KEYS: claims. ARGV: member,
# cutoff, new expiry.
_TAKEOVER = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""

# Delete a lock only if we still own it (its value is our token).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Job metrics for one finished attempt (see queueing/metrics.py): one short
# command on the worker's settle pipeline. It reads every counter it touches
# with one HMGET and writes them back with one HSET (atomic: it is a script)
# rather than a HINCRBY per counter — three commands instead of fourteen, on
# the path every job takes. The minute's hash gets its EXPIRE when created.
# KEYS: the minute hash. ARGV: ttl, failed (0/1), runtime ms, wait ms ('' if
# unknown), runtime bucket, wait bucket, number of scopes with histograms,
# then the scopes ("q|default", "j|app.jobs.x", "t|42").
_METRICS = """
local key, failed, rt, wt = KEYS[1], ARGV[2] == '1', tonumber(ARGV[3]), tonumber(ARGV[4])
local with_hist = tonumber(ARGV[7])
local fields, adds = {}, {}
local function add(field, by)
  fields[#fields + 1] = field
  adds[#adds + 1] = by
end
for i = 8, #ARGV do
  local scope = ARGV[i]
  add(scope .. '|n', 1)
  if failed then add(scope .. '|f', 1) end
  add(scope .. '|rt', rt)
  if wt then
    add(scope .. '|wt', wt)
    add(scope .. '|wn', 1)
  end
  if i - 7 <= with_hist then
    add(scope .. '|rth:' .. ARGV[5], 1)
    if wt then add(scope .. '|wth:' .. ARGV[6], 1) end
  end
end
local old = redis.call('HMGET', key, unpack(fields))
local new = {}
for j = 1, #fields do
  new[#new + 1] = fields[j]
  new[#new + 1] = string.format('%.3f', (tonumber(old[j]) or 0) + adds[j]):gsub('%.?0+$', '')
end
local created = not old[1]
redis.call('HSET', key, unpack(new))
if created then redis.call('EXPIRE', key, tonumber(ARGV[1])) end
return 1
"""

# One Script object per source; the client is always passed at call time.
_cache: dict[str, Script] = {}


def _script(conn: Any, source: str) -> Script:
    if source not in _cache:
        _cache[source] = Script(conn, source)
    return _cache[source]


def claim(conn: Redis, queue_keys: list[str], started_keys: list[str], claim_keys: list[str], args: list[Any]) -> Any:
    return _script(conn, _CLAIM)(keys=[*queue_keys, *started_keys, *claim_keys], args=args, client=conn)


def takeover(conn: Redis, claims_key: str, member: str, cutoff: float, new_expiry: float) -> bool:
    return bool(_script(conn, _TAKEOVER)(keys=[claims_key], args=[member, cutoff, new_expiry], client=conn))


def promote(conn: Redis, registry_key: str, queue_key: str, now: float, limit: int = 1000) -> int:
    stamp = utcformat(datetime.fromtimestamp(now, UTC))
    args: list[str | float] = [now, limit, stamp, Job.redis_job_namespace_prefix]
    return int(_script(conn, _PROMOTE)(keys=[registry_key, queue_key], args=args, client=conn))


def release(conn: Redis, key: str, token: str) -> bool:
    return bool(_script(conn, _RELEASE)(keys=[key], args=[token], client=conn))


# On a pipeline we send the script body with EVAL rather than redis-py's
# Script object: a pipeline holding Script calls first sends SCRIPT EXISTS
# (a round trip of its own, on every execute), and EVALSHA could meet
# NOSCRIPT after a Redis restart. Redis caches the compiled body, so EVAL of
# a short script costs little more than EVALSHA.


def release_in(pipe: Any, key: str, token: str) -> None:
    """Queue a compare-and-delete of a lock on a pipeline (same round trip as the rest)."""
    pipe.eval(_RELEASE, 1, key, token)


def metrics_in(pipe: Any, key: str, args: list[Any]) -> None:
    """Queue the metrics update of one attempt on a pipeline (see _METRICS)."""
    pipe.eval(_METRICS, 1, key, *args)
