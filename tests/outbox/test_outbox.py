from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone
from redis import Redis

import outbox
import outbox.jobs
from orders.models import Product
from outbox.models import InboxEntry, OutboxMessage
from outbox.services import (
    OutsideTransaction,
    outbox_deliver,
    outbox_prune,
    outbox_prune_left,
    outbox_relay_drain,
)
from queueing.dispatch import get_queue
from queueing.models import FailedJob
from tests.factories import ProductFactory
from tests.outbox.helpers import carried
from tests.queueing.conftest import run_worker, worker_env

pytestmark = pytest.mark.django_db(transaction=True)
Status = OutboxMessage.Status


def _publish(product: Product, n: int = 1, event: str = "test.stock_added") -> OutboxMessage:
    with transaction.atomic():
        return outbox.publish(
            event, {"product_id": product.pk, "n": n}, aggregate=("product", product.pk), tenant=product.tenant_id
        )


def _stock(product: Product) -> int:
    return Product.objects.values_list("stock_quantity", flat=True).get(pk=product.pk)


def _manage(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_publish_outside_a_transaction_is_refused(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    with pytest.raises(OutsideTransaction, match="same transaction"):
        outbox.publish("test.stock_added", {"product_id": product.pk, "n": 1}, aggregate=("product", product.pk))
    assert not OutboxMessage.objects.exists()


def test_a_rolled_back_transaction_leaves_no_message_and_no_job(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.publish("test.stock_added", {"product_id": product.pk, "n": 1}, aggregate=("product", product.pk))
        raise RuntimeError("abort")
    assert not OutboxMessage.objects.exists()
    assert outbox_relay_drain() == 0
    assert get_queue("default").count == 0


def test_relay_worker_inbox_end_to_end(redis_conn: Redis) -> None:
    product = ProductFactory.create(stock_quantity=10)
    message = _publish(product, 5)
    assert _manage("outbox_process").returncode == 0
    message.refresh_from_db()
    assert message.status == Status.DISPATCHED and message.attempts == 1
    assert message.job_id == f"outbox-{message.pk}-1-0"
    run_worker("default", "--burst")
    message.refresh_from_db()
    assert message.status == Status.PROCESSED and message.processed_at is not None
    assert _stock(product) == 15
    assert InboxEntry.objects.filter(message_id=message.pk).count() == 1


def test_a_message_delivered_twice_has_its_effect_once(redis_conn: Redis) -> None:
    product = ProductFactory.create(stock_quantity=0)
    message = _publish(product, 3)
    assert outbox_deliver(message_id=message.pk, handler="tests.outbox.handlers.add_stock") is True
    assert outbox_deliver(message_id=message.pk, handler="tests.outbox.handlers.add_stock") is False
    assert _stock(product) == 3


def test_a_job_naming_a_moved_handler_runs_it_once_and_completes_the_message(redis_conn: Redis) -> None:
    old, new = "tests.outbox.old_handlers.add_stock", "tests.outbox.handlers.add_stock"
    product = ProductFactory.create(stock_quantity=0)
    queued_before = _publish(product, 3, event="test.moved")
    assert outbox_deliver(message_id=queued_before.pk, handler=old) is True  # no such module: mapped to the new path
    assert outbox_deliver(message_id=queued_before.pk, handler=new) is False
    handled_before = _publish(product, 5, event="test.moved")
    InboxEntry.objects.create(message_id=handled_before.pk, handler=old)  # ran before the move
    assert outbox_deliver(message_id=handled_before.pk, handler=new) is False
    assert _stock(product) == 3
    statuses = OutboxMessage.objects.filter(pk__in=[queued_before.pk, handled_before.pk]).values_list(
        "status", flat=True
    )
    assert set(statuses) == {Status.PROCESSED}


def test_every_handler_of_a_fan_out_runs_once_on_its_own_queue(redis_conn: Redis) -> None:
    product = ProductFactory.create(stock_quantity=0)
    message = _publish(product, 1, event="test.fan_out")
    outbox_relay_drain()
    assert get_queue("default").count == 1 and get_queue("high").count == 1
    run_worker("high", "default", "--burst")
    message.refresh_from_db()
    assert message.status == Status.PROCESSED
    assert _stock(product) == 3


def test_concurrent_handlers_of_one_message_complete_it(redis_conn: Redis, workers: list) -> None:  # type: ignore[type-arg]
    from tests.queueing.conftest import start_worker, wait_for

    product = ProductFactory.create(stock_quantity=0)
    with transaction.atomic():
        for _ in range(40):
            outbox.publish("test.fan_out", {"product_id": product.pk, "n": 1}, aggregate=("product", product.pk))
    outbox_relay_drain()
    workers.extend([start_worker("default", "--sleep", "1"), start_worker("high", "--sleep", "1")])
    wait_for(lambda: OutboxMessage.objects.filter(status=Status.PROCESSED).count() == 40, timeout=60)
    assert _stock(product) == 40 * 3


def test_messages_without_routes_are_skipped_not_swallowed(redis_conn: Redis) -> None:
    with transaction.atomic():
        message = outbox.publish("nobody.listens", {"x": 1}, aggregate=("thing", 1))
    outbox_relay_drain()
    message.refresh_from_db()
    assert message.status == Status.SKIPPED  # replayable once a handler exists
    assert get_queue("default").count == 0


def test_a_handler_out_of_attempts_makes_the_message_dead_and_fills_the_ledger(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    message = _publish(product, event="test.rejected")
    outbox_relay_drain()
    run_worker("default", "--burst")
    message.refresh_from_db()
    assert message.status == Status.DEAD
    assert "is not acceptable" in message.last_error
    failed = FailedJob.objects.get()
    assert failed.job_name == "outbox.jobs.deliver" and failed.args[0] == message.pk


def test_a_relay_killed_between_enqueue_and_marking_loses_nothing_and_doubles_nothing(redis_conn: Redis) -> None:
    product = ProductFactory.create(stock_quantity=0)
    messages = [_publish(product, 1) for _ in range(20)]
    crashed = subprocess.run(  # SIGKILLed after its enqueue, before marking (chaos/faults.py)
        [sys.executable, "-m", "chaos.faults", "crash-after-enqueue", "outbox_process"],
        env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL
    assert sorted(carried()) == [m.pk for m in messages]  # enqueued (in one batch)...
    assert OutboxMessage.objects.filter(status=Status.PENDING).count() == 20  # ...but never marked
    run_worker("default", "--burst")  # the first copies run: effects happen, rows still pending
    assert _stock(product) == 20
    assert OutboxMessage.objects.filter(status=Status.PENDING).count() == 20
    assert _manage("outbox_process").returncode == 0  # the next pass sends them all again
    assert sorted(carried()) == [m.pk for m in messages]
    run_worker("default", "--burst")  # second deliveries: the inbox skips every one
    assert _stock(product) == 20  # each effect once
    assert InboxEntry.objects.count() == 20
    assert OutboxMessage.objects.filter(status=Status.PROCESSED).count() == len(messages)


def test_the_relay_sends_again_what_redis_lost_within_seconds(redis_conn: Redis) -> None:
    from outbox.relay import recover_if_redis_lost_data

    product = ProductFactory.create(stock_quantity=0)
    assert recover_if_redis_lost_data() == 0  # first start: the sentinel is set, nothing is lost
    messages = [_publish(product) for _ in range(5)]
    outbox_relay_drain()
    assert OutboxMessage.objects.filter(status=Status.DISPATCHED).count() == 5
    assert recover_if_redis_lost_data() == 0  # the sentinel is there: Redis kept its data
    redis_conn.flushdb()  # Redis restarted empty: the five jobs are gone
    # A running relay loop (a subprocess, as in production) notices within seconds.
    relay = _manage("outbox_process", "--loop", "--max-time", "3")
    assert relay.returncode == 0, relay.stderr
    assert "Redis lost its data; 5 message(s) sent again" in relay.stderr
    assert sorted(carried()) == [m.pk for m in messages]
    run_worker("default", "--burst")
    assert _stock(product) == 5
    assert {m.status for m in OutboxMessage.objects.filter(pk__in=[m.pk for m in messages])} == {Status.PROCESSED}


def _waiting_on_locks(cursor) -> int:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction otherwise sees its first snapshot again
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return int(cursor.fetchone()[0])


@pytest.mark.parametrize("per_job", [1, 50])
def test_two_relays_in_parallel_dispatch_each_message_once(redis_conn: Redis, per_job: int) -> None:
    product = ProductFactory.create(stock_quantity=0)
    with transaction.atomic():
        for _ in range(3000):
            outbox.publish("test.stock_added", {"product_id": product.pk, "n": 1}, aggregate=("product", product.pk))
    # Both relays start at once: the table is locked until both wait on it (one
    # starting a second later could otherwise find the other had carried all).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {OutboxMessage._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        procs = [
            subprocess.Popen([sys.executable, "manage.py", "outbox_process", "--batch-size", "100", "--per-job",
                              str(per_job)], env=worker_env(), cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]  # fmt: skip
        deadline = time.monotonic() + 60
        while _waiting_on_locks(cursor) < 2:
            assert time.monotonic() < deadline, "the relays never reached the outbox table"
            time.sleep(0.05)
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    moved = [int(out.split()[1]) for out in outputs]
    assert sum(moved) == 3000 and all(m > 0 for m in moved), moved  # both worked, neither twice
    ids = get_queue("default").job_ids
    assert len(ids) == len(set(ids)) == 3000 // per_job  # 100 per claim: every job full
    assert len(carried()) == len(set(carried())) == 3000  # each message in exactly one job
    if per_job == 1:
        assert len({job_id.split("-")[1] for job_id in ids}) == 3000  # its own job, today's ids


def test_coroner_repairs_a_redis_flush_with_every_effect_once(redis_conn: Redis) -> None:
    product = ProductFactory.create(stock_quantity=0)
    delivered = [_publish(product, 1) for _ in range(5)]
    outbox_relay_drain()
    run_worker("default", "--burst")  # these five are done before the disaster
    lost = [_publish(product, 10) for _ in range(3)]
    outbox_relay_drain()
    redis_conn.flushall()  # the dispatched jobs vanish
    OutboxMessage.objects.filter(status=Status.DISPATCHED).update(
        dispatched_at=OutboxMessage.objects.earliest("id").created_at
    )
    report = _manage("outbox_coroner", "--dispatched-after", "0", "--redispatch")
    assert report.returncode == 1  # something was stuck
    assert "dispatched, job lost: 3" in report.stdout
    run_worker("default", "--burst")
    assert _stock(product) == 5 + 30
    assert OutboxMessage.objects.filter(status=Status.PROCESSED).count() == len(delivered) + len(lost)
    assert _manage("outbox_coroner", "--dispatched-after", "0").returncode == 0  # nothing stuck now


def test_coroner_leaves_slow_but_alive_jobs_alone(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    _publish(product)
    outbox_relay_drain()  # queued, no worker yet: slow, not lost
    OutboxMessage.objects.update(dispatched_at=OutboxMessage.objects.earliest("id").created_at)
    result = _manage("outbox_coroner", "--dispatched-after", "0")
    assert "dispatched, job lost: 0" in result.stdout and result.returncode == 0


def test_replay_skips_handlers_that_ran_unless_forced(redis_conn: Redis) -> None:
    product = ProductFactory.create(stock_quantity=0)
    message = _publish(product, 7)
    outbox_relay_drain()
    run_worker("default", "--burst")
    out = StringIO()
    call_command("outbox_replay", "--from-id", str(message.pk), "--to-id", str(message.pk), "--dry-run", stdout=out)
    assert "Would replay 1 message(s)" in out.getvalue()
    call_command("outbox_replay", "--from-id", str(message.pk), "--to-id", str(message.pk), stdout=StringIO())
    run_worker("default", "--burst")
    assert _stock(product) == 7  # skipped as a duplicate
    call_command("outbox_replay", "--from-id", str(message.pk), "--force-handlers", stdout=StringIO())
    run_worker("default", "--burst")
    assert _stock(product) == 14  # forced: ran again
    with pytest.raises(CommandError) as info:
        call_command("outbox_replay", "--from-id", "9", "--to-id", "3")
    assert info.value.returncode == 2
    # An impossible date and an empty selection are usage errors too; the latter moves nothing.
    for args in (("--since", "2024-02-30T00:00"), ("--from-id", str(message.pk + 1000))):
        with pytest.raises(CommandError) as info:
            call_command("outbox_replay", *args)
        assert info.value.returncode == 2


def test_prune_deletes_old_processed_messages_in_batches(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    for _ in range(25):
        _publish(product)
    outbox_relay_drain()
    run_worker("default", "--burst")
    _publish(product)  # pending: never pruned
    OutboxMessage.objects.filter(status=Status.PROCESSED).update(
        processed_at=OutboxMessage.objects.earliest("id").created_at.replace(year=2000)
    )
    out = StringIO()
    call_command("outbox_prune", "--days", "7", "--batch-size", "10", "--dry-run", stdout=out)
    assert "Would delete 25" in out.getvalue()
    # A budget stops after the batch that crosses it (the nightly job prunes in slices).
    cutoff = timezone.now() - timedelta(days=7)
    assert outbox_prune(before=cutoff, batch_size=10, budget=0) == 10
    assert outbox_prune_left(before=cutoff)
    call_command("outbox_prune", "--days", "7", "--batch-size", "10", stdout=StringIO())
    assert OutboxMessage.objects.count() == 1
    assert not InboxEntry.objects.exists()
    assert not outbox_prune_left(before=cutoff)


def test_the_nightly_prune_job_runs_in_slices_with_one_cutoff_and_stops(
    redis_conn: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    product = ProductFactory.create()
    for _ in range(3):
        _publish(product)
    outbox_relay_drain()
    run_worker("default", "--burst")
    OutboxMessage.objects.update(processed_at=timezone.now() - timedelta(days=30))
    monkeypatch.setattr(outbox.jobs, "PRUNE_SLICE", 0)  # one batch per slice...
    monkeypatch.setattr(outbox.jobs, "PRUNE_BATCH", 1)  # ...of one row
    queue = get_queue("default")
    assert outbox.jobs.prune(7) == 1  # the job's body, as a worker runs it
    (queued,) = queue.get_jobs()
    assert queued.func_name == "outbox.jobs.prune" and queued.args[0] == 7  # the next slice, with the cutoff
    args = list(queued.args)
    redis_conn.flushdb()  # as if a worker had taken it (and its unique lock)
    assert outbox.jobs.prune(*args) == 1
    assert [job.args for job in queue.get_jobs()] == [args]  # the same cutoff, not a new one
    redis_conn.flushdb()
    assert outbox.jobs.prune(*args) == 1
    assert OutboxMessage.objects.count() == 0
    assert queue.get_jobs() == []  # nothing left before the cutoff: the chain ends


def test_loop_mode_delivers_within_a_fraction_of_a_second(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "outbox_process", "--loop", "--max-time", "30"],
        env=worker_env(),
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)  # listening
        latencies = []
        for _ in range(5):
            _publish(product)
            committed = time.monotonic()
            while get_queue("default").count == 0:
                assert time.monotonic() - committed < 5
                time.sleep(0.002)
            latencies.append(time.monotonic() - committed)
            redis_conn.delete(get_queue("default").key)
        # The 1 s poll would average 500 ms: under 250 ms each time means NOTIFY woke the relay.
        assert max(latencies) < 0.25, latencies
    finally:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=30) == 0


def test_the_claim_query_is_an_index_scan() -> None:
    with connection.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute(
            "EXPLAIN SELECT id FROM outbox_outboxmessage WHERE status = 'pending' AND available_at <= now()"
            " ORDER BY available_at, id LIMIT 500 FOR UPDATE SKIP LOCKED"
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
        cur.execute("RESET enable_seqscan")
    assert "outbox_pending_idx" in plan, plan


def test_orders_and_tenants_publish_their_events(redis_conn: Redis) -> None:
    from orders.services import LineRequest, order_cancel, order_mark_paid, order_place
    from tenants.models import Tenant
    from tenants.services import tenant_approve
    from tests.factories import TenantFactory

    product = ProductFactory.create(stock_quantity=5)
    placed = order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 1)])
    order_mark_paid(order_id=placed.pk)
    other = order_place(tenant=product.tenant, customer_email="c@example.com", lines=[LineRequest(product.pk, 1)])
    order_cancel(order_id=other.pk, reason="test")
    pending_tenant = TenantFactory.create(status=Tenant.Status.PENDING)
    assert tenant_approve(tenant_id=pending_tenant.pk) is True
    assert tenant_approve(tenant_id=pending_tenant.pk) is False
    events = list(OutboxMessage.objects.order_by("id").values_list("event_type", "aggregate_id"))
    assert events == [
        ("order.placed", str(placed.pk)),
        ("order.paid", str(placed.pk)),
        ("order.placed", str(other.pk)),
        ("order.cancelled", str(other.pk)),
        ("tenant.approved", str(pending_tenant.pk)),
    ]
    assert OutboxMessage.objects.get(event_type="order.paid").payload["total"] == str(placed.total)


def test_admin_shows_counts_and_replays(redis_conn: Redis, client) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User

    product = ProductFactory.create(stock_quantity=0)
    message = _publish(product, 2)
    client.force_login(User.objects.create_superuser("op", "op@example.com", "pw-op-123456"))
    page = client.get("/admin/outbox/outboxmessage/", {"status": "pending"})
    assert page.status_code == 200
    assert b"<strong>Pending</strong> 1" in page.content
    detail = client.get(f"/admin/outbox/outboxmessage/{message.pk}/change/")
    assert b"&quot;product_id&quot;" in detail.content  # formatted payload
    assert client.get("/admin/outbox/outboxmessage/", {"q": str(product.pk)}).status_code == 200
    response = client.post(
        "/admin/outbox/outboxmessage/", {"action": "replay", "_selected_action": [message.pk]}, follow=True
    )
    assert b"Replayed 1 message(s)." in response.content
    message.refresh_from_db()
    assert message.status == Status.DISPATCHED  # the action drained it onto the queue
