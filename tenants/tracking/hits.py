"""One hit: the per-process caches of tenants and links, the rate-limit and
buffer script (one Redis round trip), visitor hashing, UTM cleaning, and the
packed form the stream stores. docs/tracking.md."""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Generic, TypeVar
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db.models import CharField
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError

from tenants.models import Interaction, Tenant, TrackedLink

# One logger for the whole feature, as before the split (operators grep for it).
log = logging.getLogger("tenants.tracking")


# The 1×1 transparent GIF, 43 bytes.
PIXEL: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


STREAM: Final = "vito:track:buffer"


WINDOW: Final = 60  # seconds of one rate-limit window


CACHE_SECONDS: Final = 60  # a new, edited or suspended tenant or link shows within this


UTM_STORED: Final = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


# A buffered hit is one stream field, "h", holding these values joined by SEP:
# tenant id, kind (v/r), visitor hash, link code, then the UTM_STORED values.
# One fixed-shape field keeps the stream compact (about 60 bytes a hit) and
# makes the drain's parsing a split, not a dict per entry.
SEP: Final = "\x1f"


# C0 controls (NUL, SEP, newlines), DEL and C1 controls are removed from every
# value a request stores: never meaningful in a campaign name, and PostgreSQL
# refuses NUL in text (one such value used to fail every drain of its batch).
_CONTROLS: Final = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)])


REDIS_LOG_EVERY: Final = 60  # seconds between two "Redis unavailable" lines of one process


# KEYS: the window counter, the stream. ARGV: limit (0 = do not count), counter
# TTL, stream cap, then the packed hit (absent = count only).
# INCR and its EXPIRE run atomically here, so the TTL is set exactly once per
# window key without EXPIRE NX (Redis 7); the window number is in the key, so
# a window can never be extended by hits that keep arriving.
_HIT_LUA: Final = """
local limit = tonumber(ARGV[1])
if limit > 0 then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  if n > limit then return 0 end
end
if ARGV[4] then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'h', ARGV[4])
end
return 1
"""


K = TypeVar("K", bound=Hashable)


V = TypeVar("V")


class _TTLCache(Generic[K, V]):
    """A small per-process map whose entries live ``CACHE_SECONDS``: slugs and links
    change rarely, and a minute's delay is the price of no SQL per hit. Negative
    answers are cached too; the size bound keeps made-up slugs from growing it."""

    def __init__(self, max_size: int = 10_000) -> None:
        self.max_size = max_size
        self._data: dict[K, tuple[float, V | None]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._data.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: K, value: V | None) -> None:
        if len(self._data) >= self.max_size:
            self._data.clear()
        self._data[key] = (time.monotonic() + CACHE_SECONDS, value)

    def clear(self) -> None:
        self._data.clear()


_tenants: _TTLCache[str, int] = _TTLCache()


_links: _TTLCache[tuple[int, str], str] = _TTLCache()


_salt: dict[str, tuple[float, bytes]] = {}


# Buckets this process saw go over their limit -> that window. A fixed window
# stays over until it ends, so later hits in it are answered 429 at once, with
# no Redis at all: a flood costs this dict lookup.
limited: dict[str, int] = {}


_script: list[tuple[Redis, Script]] = []


@dataclass(slots=True)
class _Outage:
    """This process' Redis failures on the public path, for a log line at most
    every REDIS_LOG_EVERY seconds: an outage must not write one per request."""

    logged_at: float = float("-inf")
    missed: int = 0


outage = _Outage()


def clear_caches() -> None:
    """Forget cached tenants, links, salts and limited buckets (tests; a shell after bulk edits)."""
    _tenants.clear()
    _links.clear()
    _salt.clear()
    limited.clear()
    outage.logged_at, outage.missed = float("-inf"), 0


@lru_cache(maxsize=1)
def column_sizes() -> dict[str, int]:
    """``Interaction``'s text columns and their sizes: values are cut to fit."""
    return {
        f.name: int(f.max_length)
        for f in Interaction._meta.concrete_fields
        if isinstance(f, CharField) and f.max_length
    }


def clean(value: str, size: int) -> str:
    """``value`` without control characters (see _CONTROLS), at most ``size`` characters."""
    return value.translate(_CONTROLS)[:size]


def _hit_script(conn: Redis) -> Script:
    if not _script or _script[0][0] is not conn:
        _script[:] = [(conn, conn.register_script(_HIT_LUA))]
    return _script[0][1]


def bucket_of(ip: str) -> str:
    """The rate-limit bucket: the address, or its /64 for IPv6 (one subscriber's
    allocation: anyone holding one has 2**64 addresses to rotate through)."""
    if ":" in ip:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address) + "/64"
    return ip


def _daily_salt(conn: Redis, day: str) -> bytes:
    """A random salt per day, shared by every process through Redis and dropped
    after two days: visitor hashes count distinct visitors within a day and can
    never be linked to an address or across days, even by whoever holds SECRET_KEY.
    Re-read every 5 minutes, so processes agree again soon after a Redis flush."""
    cached = _salt.get(day)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    key = f"vito:track:salt:{day}"
    with conn.pipeline() as pipe:  # MULTI: set it if absent, then read whichever won
        pipe.set(key, secrets.token_hex(32), nx=True, ex=2 * 86400)
        pipe.get(key)
        value = bytes(pipe.execute()[1])
    _salt.clear()
    _salt[day] = (time.monotonic() + 300, value)
    return value


def visitor_hash(conn: Redis, ip: str, user_agent: str) -> str:
    salt = _daily_salt(conn, timezone.localdate().isoformat())
    return hmac.new(salt, f"{ip}\n{user_agent[:512]}".encode(), hashlib.sha256).hexdigest()[:16]


def utm_of(request: HttpRequest) -> dict[str, str]:
    """The request's ``utm_*`` parameters, cleaned and bounded (they go into a URL
    and a row): no control characters, values no longer than the columns."""
    found: dict[str, str] = {}
    if "utm_" not in request.META.get("QUERY_STRING", ""):
        return found  # most hits: no query to parse
    size = column_sizes()["utm_source"]
    for raw in request.GET:
        key = clean(raw, 32)
        if key.startswith("utm_") and len(raw) <= 32 and len(found) < 10:
            found[key] = clean(request.GET.get(raw) or "", size)  # a repeated key: its last value
    return found


@dataclass(frozen=True, slots=True)
class Target:
    tenant_id: int
    destination: str = ""  # redirects only


class Miss(enum.Enum):
    MISS = "not cached"


def cached_target(slug: str, code: str | None) -> Target | Miss | None:
    found, tenant_id = _tenants.get(slug)
    if not found:
        return Miss.MISS
    if tenant_id is None:
        return None
    if code is None:
        return Target(tenant_id)
    found, destination = _links.get((tenant_id, code))
    if not found:
        return Miss.MISS
    return Target(tenant_id, destination) if destination else None


def load_target(slug: str, code: str | None) -> Target | None:
    found, tenant_id = _tenants.get(slug)
    if not found:
        # Approved tenants only: a pending or suspended tenant's pages are not live.
        tenant_id = Tenant.objects.filter(slug=slug, status=Tenant.Status.APPROVED).values_list("pk", flat=True).first()
        _tenants.put(slug, tenant_id)
    if tenant_id is None:
        return None
    if code is None:
        return Target(tenant_id)
    destination = (
        TrackedLink.objects.filter(tenant_id=tenant_id, code=code).values_list("destination", flat=True).first()
    )
    _links.put((tenant_id, code), destination)
    return Target(tenant_id, destination) if destination else None


def packed_hit(conn: Redis, request: HttpRequest, ip: str, target: Target, code: str | None) -> str:
    """The hit as the stream stores it (see SEP)."""
    utm = utm_of(request)
    visitor = visitor_hash(conn, ip, str(request.META.get("HTTP_USER_AGENT", "")))
    values = [str(target.tenant_id), "r" if code else "v", visitor, clean(code or "", column_sizes()["code"])]
    values += [utm.get(name, "") for name in UTM_STORED]  # cleaned: SEP is a control character
    return SEP.join(values)


def record_hit(conn: Redis, bucket: str, window: int, packed: str | None, *, count: bool) -> bool:
    """One round trip: count the hit in its window (when ``count``) and buffer it
    (when ``packed``) unless that put it over the limit. False = over the limit."""
    limit = int(settings.TRACKING_RATE_LIMIT_PER_MINUTE) if count else 0
    keys = [f"vito:track:rl:{window}:{bucket}", STREAM]
    args: list[str | int] = [limit, WINDOW * 2, int(settings.TRACKING_BUFFER_MAX_LEN)]
    if packed is not None:
        args.append(packed)
    if _hit_script(conn)(keys=keys, args=args):
        return True
    if len(limited) >= 10_000:
        limited.clear()
    limited[bucket] = window
    return False


def too_many() -> HttpResponse:
    # Constant and tiny: a client over its limit costs a dict lookup (limited) and this.
    response = HttpResponse(b"Too many requests\n", status=429, content_type="text/plain")
    response["Retry-After"] = str(WINDOW - int(time.time()) % WINDOW)
    response["Cache-Control"] = "no-store"
    # Django logs every 4xx as a WARNING line; a client hammering past its limit
    # would write thousands a second. The limit working is not news.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def redis_failed(exc: RedisError) -> None:
    outage.missed += 1
    now = time.monotonic()
    if now - outage.logged_at < REDIS_LOG_EVERY:
        return
    log.error(
        "tracking: Redis unavailable (%s: %s); pixels and redirects are served without counting or "
        "recording hits (%d request(s) since this process's previous such line; at most one every %d s)",
        type(exc).__name__,
        exc,
        outage.missed,
        REDIS_LOG_EVERY,
    )
    outage.logged_at, outage.missed = now, 0


def with_utm(destination: str, utm: dict[str, str]) -> str:
    """``destination`` with the request's utm parameters added (replacing the
    destination's own of the same name); its other parameters stay byte for byte."""
    if not utm:
        return destination
    parts = urlsplit(destination)
    own = [pair for pair in parts.query.split("&") if pair and unquote_plus(pair.split("=", 1)[0]) not in utm]
    return urlunsplit(parts._replace(query="&".join([*own, urlencode(utm)])))


def default_redis() -> Redis:
    """The queues' Redis connection: where hits are counted and buffered."""
    from queueing.dispatch import redis_connection

    return redis_connection()
