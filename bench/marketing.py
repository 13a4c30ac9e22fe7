"""Campaign fan-out: deliveries created and every SendCampaignEmail job queued.

For BENCH_FANOUT_SUBSCRIBERS active subscribers (default 100,000), one campaign
each path, all in the same run against the same servers:

- ``campaign_fan_out`` (ours): one ``INSERT … SELECT … ON CONFLICT DO NOTHING``,
  then delivery ids streamed from a server-side cursor and queued with
  ``dispatch_many``, one Redis round trip per 1,000 jobs;
- the same with the deliveries made by ``bulk_create(ignore_conflicts=True)``
  in batches of 1,000 (subscriber ids read into Python first);
- one by one (the baseline): per subscriber, ``CampaignDelivery.objects.create``
  and ``send_campaign_email.dispatch()``. Slow, so it runs for
  BENCH_FANOUT_BASELINE subscribers (default 10,000) and its time is
  extrapolated linearly to the full count (said so in the table);
- ``dispatch()`` alone, one by one, for the baseline's count (extrapolated too),
  to show where the baseline's time goes.

Peak Python memory of the fan-out (tracemalloc, a separate run so it does not
slow the timed one) shows it stays flat. The queue is emptied after each path.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable

from bench.harness import table


def _tenant_with_subscribers(count: int) -> int:
    from django.db import connection

    from tests.factories import TenantFactory

    tenant = TenantFactory.create()
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO marketing_subscriber (tenant_id, email, created_at)"
            " SELECT %s, 'reader' || g || '@example.com', now() FROM generate_series(1, %s) g",
            [tenant.pk, count],
        )
        cur.execute("ANALYZE marketing_subscriber")
    return int(tenant.pk)


def _sending_campaign(tenant_id: int) -> int:
    from marketing.models import Campaign

    campaign = Campaign.objects.create(
        tenant_id=tenant_id, subject="Bench", body="Hello", status=Campaign.Status.SENDING
    )
    return int(campaign.pk)


def _empty_queue() -> int:
    from queueing.dispatch import get_queue

    queue = get_queue("default")
    count = queue.count
    queue.empty()  # type: ignore[no-untyped-call]
    return count


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _ours(tenant_id: int) -> tuple[float, int]:
    from marketing.services import campaign_fan_out

    campaign_id = _sending_campaign(tenant_id)
    seconds = _timed(lambda: campaign_fan_out(campaign_id=campaign_id))
    return seconds, _empty_queue()


def _bulk_create_deliveries(tenant_id: int, campaign_id: int) -> None:
    from marketing.models import CampaignDelivery, Subscriber

    ids = list(
        Subscriber.objects.filter(tenant_id=tenant_id, unsubscribed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for start in range(0, len(ids), 1000):
        CampaignDelivery.objects.bulk_create(
            [CampaignDelivery(campaign_id=campaign_id, subscriber_id=s) for s in ids[start : start + 1000]],
            ignore_conflicts=True,
        )


def _bulk_create(tenant_id: int) -> tuple[float, int]:
    """The fan-out with bulk_create instead of INSERT … SELECT (same dispatch)."""
    from marketing.jobs import send_campaign_email
    from marketing.models import CampaignDelivery

    campaign_id = _sending_campaign(tenant_id)

    def run() -> None:
        _bulk_create_deliveries(tenant_id, campaign_id)
        pending = CampaignDelivery.objects.filter(campaign_id=campaign_id, status="pending").order_by("id")
        chunk: list[tuple[int, int]] = []
        for pk in pending.values_list("id", flat=True).iterator(chunk_size=1000):
            chunk.append((tenant_id, pk))
            if len(chunk) == 1000:
                send_campaign_email.dispatch_many(chunk)
                chunk = []
        send_campaign_email.dispatch_many(chunk)

    seconds = _timed(run)
    return seconds, _empty_queue()


def _deliveries_only(tenant_id: int) -> tuple[float, float]:
    """Seconds to create the deliveries alone: (INSERT … SELECT, bulk_create in batches)."""
    from django.db import transaction

    from marketing.models import Campaign
    from marketing.services import _create_deliveries

    campaign = Campaign.objects.get(pk=_sending_campaign(tenant_id))
    with transaction.atomic():
        insert_s = _timed(lambda: _create_deliveries(campaign))
    other = _sending_campaign(tenant_id)
    return insert_s, _timed(lambda: _bulk_create_deliveries(tenant_id, other))


def _one_by_one(tenant_id: int, count: int) -> tuple[float, float, int]:
    """(seconds for create+dispatch, seconds for dispatch alone, jobs) over ``count`` subscribers."""
    from marketing.jobs import send_campaign_email
    from marketing.models import CampaignDelivery, Subscriber

    campaign_id = _sending_campaign(tenant_id)
    subscriber_ids = list(
        Subscriber.objects.filter(tenant_id=tenant_id).order_by("id").values_list("id", flat=True)[:count]
    )
    delivery_ids: list[int] = []

    def naive() -> None:
        for subscriber_id in subscriber_ids:
            delivery = CampaignDelivery.objects.create(campaign_id=campaign_id, subscriber_id=subscriber_id)
            send_campaign_email.dispatch(tenant_id, delivery.pk)
            delivery_ids.append(delivery.pk)

    naive_s = _timed(naive)
    _empty_queue()

    def dispatch_only() -> None:
        for pk in delivery_ids:
            send_campaign_email.dispatch(tenant_id, pk)

    dispatch_s = _timed(dispatch_only)
    return naive_s, dispatch_s, _empty_queue()


def _peak_memory(tenant_id: int) -> float:
    from marketing.services import campaign_fan_out

    campaign_id = _sending_campaign(tenant_id)
    tracemalloc.start()
    campaign_fan_out(campaign_id=campaign_id)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    _empty_queue()
    return peak / 1024 / 1024


def run() -> None:
    import django_rq

    n = int(os.environ.get("BENCH_FANOUT_SUBSCRIBERS", "100000"))
    small = min(n, int(os.environ.get("BENCH_FANOUT_BASELINE", "10000")))
    django_rq.get_connection("default").flushdb()  # the bench's own Redis database
    tenant_id = _tenant_with_subscribers(n)

    _ours(_tenant_with_subscribers(1000))  # warm-up: imports, connections, plans
    ours_s, ours_jobs = _ours(tenant_id)
    assert ours_jobs == n, ours_jobs
    bulk_s, bulk_jobs = _bulk_create(tenant_id)
    assert bulk_jobs == n, bulk_jobs
    naive_small_s, dispatch_small_s, naive_jobs = _one_by_one(tenant_id, small)
    assert naive_jobs == small, naive_jobs
    insert_s, bulk_create_s = _deliveries_only(tenant_id)
    peak_mb = _peak_memory(tenant_id)

    scale = n / small
    naive_s, dispatch_s = naive_small_s * scale, dispatch_small_s * scale
    note = "" if small == n else f" (measured on {small:,}, ×{scale:g})"
    table(
        f"Campaign fan-out to {n:,} subscribers: deliveries created + every job queued"
        f" (ours: peak Python memory {peak_mb:.1f} MB)",
        ["path", "seconds", "recipients/s", "vs one by one"],
        [
            [label, f"{secs:.1f}", f"{n / secs:,.0f}", f"{naive_s / secs:.1f}x"]
            for label, secs in (
                ("one by one: create() + dispatch() per recipient" + note, naive_s),
                ("bulk_create(ignore_conflicts) + dispatch_many", bulk_s),
                ("campaign_fan_out: INSERT…SELECT + dispatch_many (ours)", ours_s),
            )
        ],
    )
    table(
        "Where the time goes (same run)",
        ["step", "how", "seconds", "µs/recipient"],
        [
            [step, how, f"{secs:.1f}", f"{secs / n * 1e6:,.0f}"]
            for step, how, secs in (
                ("deliveries", "INSERT … SELECT … ON CONFLICT DO NOTHING (ours)", insert_s),
                ("deliveries", "bulk_create(ignore_conflicts), 1,000 a batch", bulk_create_s),
                ("enqueue", "dispatch_many, 1,000 a round trip (ours: total − INSERT)", ours_s - insert_s),
                ("enqueue", "dispatch() one by one" + note, dispatch_s),
            )
        ],
    )
    django_rq.get_connection("default").flushdb()
