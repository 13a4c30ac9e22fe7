"""Public tracking: ``/t/<tenant>/pixel.gif`` and ``/t/<tenant>/r/<code>``, and the
Redis buffer between them and the ``Interaction`` table.

Why a buffer: at thousands of hits per second an INSERT (and a durable commit)
per hit would make PostgreSQL the bottleneck of the public endpoints, so a hit
is one Redis round trip. One Lua call counts the client's per-minute window and,
when under the limit, appends the hit to the stream ``vito:track:buffer``.
RecordInteraction (``analytics.jobs.record_interactions``, every minute) drains
the stream through a consumer group in batches of 5,000: one multi-row INSERT
per batch, then XACK + XDEL. A run that crashes between its INSERT and its XACK
leaves the batch pending; the next run reads the pending entries first, and the
unique ``hit_id`` (the stream entry id) makes their second INSERT a no-op, so
a hit is never lost and never counted twice. An entry PostgreSQL refuses is
dropped (logged) rather than retried forever: one bad hit must never stall the
stream. See README "Tracking and analytics".

Redis unavailable (down, out of memory, refusing): the pixel and redirects
are still served, from PostgreSQL and the per-process caches, uncounted and
unrecorded, with one log line per process per ``REDIS_LOG_EVERY`` seconds.

Why plain Django views, not DRF: DRF's request wrapping, content negotiation,
authentication and throttle classes cost more than this whole view, and its
cache-based throttle keeps a list of timestamps per client (a read and a write
of the whole list per request, racy between processes). A fixed-window INCR is
O(1), atomic in the script, and shares the round trip with the buffer append.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Generic, TypeVar
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import CharField
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed, HttpResponseRedirect
from django.utils import timezone
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError, ResponseError

from lib.client_ip import client_ip
from tenants.models import Interaction, Tenant, TrackedLink

log = logging.getLogger(__name__)

# The 1×1 transparent GIF, 43 bytes.
PIXEL: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

STREAM: Final = "vito:track:buffer"
GROUP: Final = "record"
# One consumer name for every drain: a run that crashed left its batch pending
# under this name, so the next run (any worker) finds it by reading from id 0.
CONSUMER: Final = "drain"
BATCH_SIZE: Final = 5000
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
_limited: dict[str, int] = {}
_script: list[tuple[Redis, Script]] = []


@dataclass(slots=True)
class _Outage:
    """This process' Redis failures on the public path, for a log line at most
    every REDIS_LOG_EVERY seconds: an outage must not write one per request."""

    logged_at: float = float("-inf")
    missed: int = 0


_outage = _Outage()


def clear_caches() -> None:
    """Forget cached tenants, links, salts and limited buckets (tests; a shell after bulk edits)."""
    _tenants.clear()
    _links.clear()
    _salt.clear()
    _limited.clear()
    _outage.logged_at, _outage.missed = float("-inf"), 0


@lru_cache(maxsize=1)
def _sizes() -> dict[str, int]:
    """``Interaction``'s text columns and their sizes: values are cut to fit."""
    return {
        f.name: int(f.max_length)
        for f in Interaction._meta.concrete_fields
        if isinstance(f, CharField) and f.max_length
    }


def clean(value: str, size: int) -> str:
    """``value`` without control characters (see _CONTROLS), at most ``size`` characters."""
    return value.translate(_CONTROLS)[:size]


def _redis() -> Redis:
    from queueing.dispatch import get_queue

    return get_queue("default").connection


def _hit_script(conn: Redis) -> Script:
    if not _script or _script[0][0] is not conn:
        _script[:] = [(conn, conn.register_script(_HIT_LUA))]
    return _script[0][1]


# --------------------------------------------------------------------------- client address


# client_ip: lib/client_ip.py (TRACKING_TRUSTED_PROXIES decides whose X-Forwarded-For counts).


def _bucket(ip: str) -> str:
    """The rate-limit bucket: the address, or its /64 for IPv6 (one subscriber's
    allocation: anyone holding one has 2**64 addresses to rotate through)."""
    if ":" in ip:
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False).network_address) + "/64"
    return ip


# --------------------------------------------------------------------------- the hit


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


def _utm(request: HttpRequest) -> dict[str, str]:
    """The request's ``utm_*`` parameters, cleaned and bounded (they go into a URL
    and a row): no control characters, values no longer than the columns."""
    found: dict[str, str] = {}
    if "utm_" not in request.META.get("QUERY_STRING", ""):
        return found  # most hits: no query to parse
    size = _sizes()["utm_source"]
    for raw in request.GET:
        key = clean(raw, 32)
        if key.startswith("utm_") and len(raw) <= 32 and len(found) < 10:
            found[key] = clean(request.GET.get(raw) or "", size)  # a repeated key: its last value
    return found


@dataclass(frozen=True, slots=True)
class _Target:
    tenant_id: int
    destination: str = ""  # redirects only


class _Miss(enum.Enum):
    MISS = "not cached"


def _cached(slug: str, code: str | None) -> _Target | _Miss | None:
    found, tenant_id = _tenants.get(slug)
    if not found:
        return _Miss.MISS
    if tenant_id is None:
        return None
    if code is None:
        return _Target(tenant_id)
    found, destination = _links.get((tenant_id, code))
    if not found:
        return _Miss.MISS
    return _Target(tenant_id, destination) if destination else None


def _load(slug: str, code: str | None) -> _Target | None:
    found, tenant_id = _tenants.get(slug)
    if not found:
        # Approved tenants only: a pending or suspended tenant's pages are not live.
        tenant_id = Tenant.objects.filter(slug=slug, status=Tenant.Status.APPROVED).values_list("pk", flat=True).first()
        _tenants.put(slug, tenant_id)
    if tenant_id is None:
        return None
    if code is None:
        return _Target(tenant_id)
    destination = (
        TrackedLink.objects.filter(tenant_id=tenant_id, code=code).values_list("destination", flat=True).first()
    )
    _links.put((tenant_id, code), destination)
    return _Target(tenant_id, destination) if destination else None


def _packed(conn: Redis, request: HttpRequest, ip: str, target: _Target, code: str | None) -> str:
    """The hit as the stream stores it (see SEP)."""
    utm = _utm(request)
    visitor = visitor_hash(conn, ip, str(request.META.get("HTTP_USER_AGENT", "")))
    values = [str(target.tenant_id), "r" if code else "v", visitor, clean(code or "", _sizes()["code"])]
    values += [utm.get(name, "") for name in UTM_STORED]  # cleaned: SEP is a control character
    return SEP.join(values)


def _run(conn: Redis, bucket: str, window: int, packed: str | None, *, count: bool) -> bool:
    """One round trip: count the hit in its window (when ``count``) and buffer it
    (when ``packed``) unless that put it over the limit. False = over the limit."""
    limit = int(settings.TRACKING_RATE_LIMIT_PER_MINUTE) if count else 0
    keys = [f"vito:track:rl:{window}:{bucket}", STREAM]
    args: list[str | int] = [limit, WINDOW * 2, int(settings.TRACKING_BUFFER_MAX_LEN)]
    if packed is not None:
        args.append(packed)
    if _hit_script(conn)(keys=keys, args=args):
        return True
    if len(_limited) >= 10_000:
        _limited.clear()
    _limited[bucket] = window
    return False


def _too_many() -> HttpResponse:
    # Constant and tiny: a client over its limit costs a dict lookup (_limited) and this.
    response = HttpResponse(b"Too many requests\n", status=429, content_type="text/plain")
    response["Retry-After"] = str(WINDOW - int(time.time()) % WINDOW)
    response["Cache-Control"] = "no-store"
    # Django logs every 4xx as a WARNING line; a client hammering past its limit
    # would write thousands a second. The limit working is not news.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _track(request: HttpRequest, slug: str, code: str | None) -> _Target | HttpResponse | None:
    """Count and buffer one hit; the target, None when unknown, or a 429 response.
    Without Redis the hit is neither counted nor recorded, and the target still
    comes from the caches or PostgreSQL: the page and the campaign link work."""
    ip = client_ip(request)
    bucket = _bucket(ip)
    window = int(time.time()) // WINDOW
    if _limited.get(bucket) == window:
        return _too_many()
    try:
        return _count(request, slug, code, ip, bucket, window)
    except RedisError as exc:
        _redis_failed(exc)
    target = _cached(slug, code)
    return _load(slug, code) if isinstance(target, _Miss) else target


def _redis_failed(exc: RedisError) -> None:
    _outage.missed += 1
    now = time.monotonic()
    if now - _outage.logged_at < REDIS_LOG_EVERY:
        return
    log.error(
        "tracking: Redis unavailable (%s: %s); pixels and redirects are served without counting or "
        "recording hits (%d request(s) since this process's previous such line; at most one every %d s)",
        type(exc).__name__,
        exc,
        _outage.missed,
        REDIS_LOG_EVERY,
    )
    _outage.logged_at, _outage.missed = now, 0


def _count(
    request: HttpRequest, slug: str, code: str | None, ip: str, bucket: str, window: int
) -> _Target | HttpResponse | None:
    conn = _redis()
    record = request.method == "GET"  # a HEAD (link checkers, prefetch) counts against the limit, records nothing
    target = _cached(slug, code)
    if isinstance(target, _Miss):
        # Not known to this process yet: count the hit before the query, so a
        # flood of made-up slugs or codes is limited before it reaches PostgreSQL.
        if not _run(conn, bucket, window, None, count=True):
            return _too_many()
        loaded = _load(slug, code)
        if loaded is not None and record:
            _run(conn, bucket, window, _packed(conn, request, ip, loaded, code), count=False)
        return loaded
    packed = _packed(conn, request, ip, target, code) if target is not None and record else None
    if not _run(conn, bucket, window, packed, count=True):
        return _too_many()
    return target


def pixel(request: HttpRequest, tenant: str) -> HttpResponseBase:
    """``GET /t/<tenant>/pixel.gif``: the GIF, always (an unknown or inactive
    tenant's pixel records nothing, but an image tag never breaks a page), or 429."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    outcome = _track(request, tenant, None)
    if isinstance(outcome, HttpResponse):
        return outcome
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"  # every open is a request, never a cached image
    return response


def with_utm(destination: str, utm: dict[str, str]) -> str:
    """``destination`` with the request's utm parameters added (replacing the
    destination's own of the same name); its other parameters stay byte for byte."""
    if not utm:
        return destination
    parts = urlsplit(destination)
    own = [pair for pair in parts.query.split("&") if pair and unquote_plus(pair.split("=", 1)[0]) not in utm]
    return urlunsplit(parts._replace(query="&".join([*own, urlencode(utm)])))


def redirect(request: HttpRequest, tenant: str, code: str) -> HttpResponseBase:
    """``GET /t/<tenant>/r/<code>``: 302 to the link's stored destination plus the
    request's utm parameters; an unknown tenant or code is a 404. The target is
    only ever the stored URL (http/https, validated), never one from the request."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    outcome = _track(request, tenant, code)
    if isinstance(outcome, HttpResponse):
        return outcome
    if outcome is None:
        return HttpResponse(b"Not found\n", status=404, content_type="text/plain")
    response = HttpResponseRedirect(with_utm(outcome.destination, _utm(request)))
    response["Cache-Control"] = "no-store"  # a cached redirect would skip the next click's count
    return response


# --------------------------------------------------------------------------- the drain

Entry = tuple[bytes, dict[bytes, bytes] | None]  # (stream id, fields); None: trimmed


def ensure_group(conn: Redis) -> None:
    """The consumer group, created reading from the start of the stream (id 0), so
    hits buffered before the group existed (a fresh or flushed Redis) are kept."""
    try:
        conn.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def read_batch(conn: Redis, *, pending: bool, count: int = BATCH_SIZE) -> list[Entry]:
    """Up to ``count`` entries: the group's unacknowledged ones (``pending``: what
    a crashed run read and never acknowledged), or new ones."""
    reply: Any = conn.xreadgroup(GROUP, CONSUMER, {STREAM: "0" if pending else ">"}, count=count)
    if not reply:
        return []
    return list(reply[0][1])


Row = tuple[int, str, str, str, datetime, str, str, str, str, str, str]


def _row(hit_id: str, packed: str) -> Row:
    tenant, kind, visitor, code, source, medium, campaign, term, content = packed.split(SEP)
    size = _sizes()
    return (
        int(tenant),
        Interaction.Kind.REDIRECT if kind == "r" else Interaction.Kind.VIEW,
        code[: size["code"]],
        visitor[: size["visitor"]],
        # The entry id starts with Redis' clock in milliseconds: the hit's time.
        datetime.fromtimestamp(int(hit_id.split("-")[0]) / 1000, UTC),
        source[: size["utm_source"]],
        medium[: size["utm_medium"]],
        campaign[: size["utm_campaign"]],
        term[: size["utm_term"]],
        content[: size["utm_content"]],
        hit_id,
    )


# The columns in Row's order. One INSERT … SELECT FROM unnest(arrays) per batch:
# eleven parameters however many rows, where bulk_create would compile (and
# psycopg adapt) eleven placeholders per row, several times the drain's cost.
_COLUMNS: Final = ("tenant_id", "kind", "code", "visitor", "occurred_at", *UTM_STORED, "hit_id")
_TYPES: Final = ("bigint", "text", "text", "text", "timestamptz", "text", "text", "text", "text", "text", "text")


def _insert(rows: Sequence[Row]) -> None:
    columns = ", ".join(_COLUMNS)
    arrays = ", ".join(f"%s::{kind}[]" for kind in _TYPES)
    sql = (
        f"INSERT INTO {Interaction._meta.db_table} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608 - constants
        " ON CONFLICT (hit_id) DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows, strict=True)])


def _insert_each(rows: Sequence[Row]) -> list[tuple[str, Exception]]:
    """The rows one by one, each in a savepoint, in one transaction: the rows
    PostgreSQL refuses (hit id, error) are left out, the others are stored."""
    refused: list[tuple[str, Exception]] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Foreign keys are checked at commit (Django makes them DEFERRABLE
            # INITIALLY DEFERRED): checked now, a row whose tenant was deleted
            # fails in its own savepoint, not the whole transaction at the end.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for row in rows:
            try:
                with transaction.atomic():
                    _insert([row])
            except (DataError, IntegrityError) as exc:
                refused.append((row[-1], exc))
    return refused


def store(entries: Sequence[Entry]) -> int:
    """Insert a batch (one statement, one transaction); entries already stored
    are skipped by their ``hit_id`` (ON CONFLICT DO NOTHING), so storing a batch
    twice stores it once. Returns the rows stored (or found already stored).

    Entries that can never be stored are left out, with one log line for the
    batch, so that acknowledging the batch drops them: malformed ones, hits of
    a deleted tenant, and rows PostgreSQL refuses (a value it cannot hold). If
    the batch's INSERT is refused, it is retried row by row to find those.
    Anything else (PostgreSQL down, a timeout) raises: the batch stays pending
    and the next run stores it.
    """
    rows: list[Row] = []
    malformed: list[str] = []
    for raw_id, fields in entries:
        hit_id = raw_id.decode()
        if not fields:
            continue  # trimmed by the stream cap before it was read
        try:
            rows.append(_row(hit_id, fields[b"h"].decode()))
        except (KeyError, ValueError, UnicodeDecodeError, OverflowError, OSError):
            malformed.append(hit_id)
    if malformed:
        log.warning("tracking: dropped %d malformed buffered hit(s) (first: %s)", len(malformed), malformed[0])
    # A tenant deleted since its hits were buffered: they have nothing to belong to.
    live = set(Tenant.objects.filter(pk__in={row[0] for row in rows}).values_list("pk", flat=True))
    rows = [row for row in rows if row[0] in live]
    if not rows:
        return 0
    try:
        with transaction.atomic():
            _insert(rows)
    except (DataError, IntegrityError) as exc:
        log.warning("tracking: PostgreSQL refused a batch of %d hits (%s); storing them one by one", len(rows), exc)
        refused = _insert_each(rows)
        if refused:
            hit_id, error = refused[0]
            log.error(
                "tracking: dropped %d buffered hit(s) PostgreSQL refused (first: %s: %s: %s)",
                len(refused),
                hit_id,
                type(error).__name__,
                error,
            )
        return len(rows) - len(refused)
    return len(rows)


def acknowledge(conn: Redis, entries: Sequence[Entry]) -> None:
    """Done with a stored batch: acknowledge it and free its memory (MULTI)."""
    ids = [raw_id for raw_id, _ in entries]
    if ids:
        with conn.pipeline() as pipe:
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            pipe.execute()


def interactions_record(*, batch_size: int = BATCH_SIZE, max_seconds: float = 50.0) -> int:
    """Drain the buffer into ``Interaction`` rows until it is empty (or
    ``max_seconds`` passed; the next run continues). Pending entries first.

    Each batch is read, stored and committed, and only then acknowledged: a crash
    anywhere leaves the batch pending for the next run, which stores it again
    harmlessly (``hit_id``). Two runs at once are safe for the same reason.
    """
    conn = _redis()
    ensure_group(conn)
    deadline = time.monotonic() + max_seconds
    pending, total = True, 0
    while time.monotonic() < deadline:
        entries = read_batch(conn, pending=pending, count=batch_size)
        if not entries:
            if not pending:
                break
            pending = False
            continue
        total += store(entries)
        acknowledge(conn, entries)
    return total


def buffered(conn: Redis | None = None) -> int:
    """Hits waiting in the buffer (read or not)."""
    return int((conn or _redis()).xlen(STREAM))


def buffered_hits(*, campaign: str, conn: Redis | None = None, scan: int = 10_000) -> int:
    """How many of the newest ``scan`` buffered hits carry ``utm_campaign`` ``campaign``
    (the tracking smoke test's diagnosis: recorded by the web app but not drained yet?)."""
    entries = (conn or _redis()).xrevrange(STREAM, count=scan) or []
    needle = f"{SEP}{campaign}{SEP}".encode()
    found = 0
    for _, fields in entries:
        packed = (fields or {}).get(b"h", b"")
        if isinstance(packed, bytes) and needle in packed + SEP.encode():
            found += 1
    return found
