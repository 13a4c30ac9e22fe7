"""Batches: several outbox messages in one delivery job, each keeping what a
job of its own gives it (docs/outbox.md, "Batches"). Real relay passes, real
burst or long-running workers, real PostgreSQL and Redis."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import transaction
from redis import Redis
from rq.command import send_stop_job_command

import outbox
import outbox.jobs
from orders.models import Product
from outbox.job_ids import BATCH_PREFIX, single_job_id
from outbox.models import InboxEntry, OutboxMessage
from outbox.services import Policy, outbox_deliver, outbox_deliver_batch, outbox_relay_drain, outbox_replay
from queueing.dispatch import enqueue_batch_rollback_unsafe, get_queue
from queueing.models import FailedJob
from tests.factories import ProductFactory, TenantFactory
from tests.outbox.helpers import carried
from tests.queueing.conftest import run_worker, start_worker, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)
Status = OutboxMessage.Status


def _products(n: int) -> list[Product]:
    """One product per message, at stock 0: stock 1 after is "once", 0 "lost", 2 "twice"."""
    tenant = TenantFactory.create()
    return [ProductFactory.create(tenant=tenant, stock_quantity=0) for _ in range(n)]


def _publish(products: list[Product], event: str = "test.stock_added", **extra: object) -> list[OutboxMessage]:
    with transaction.atomic():
        return [
            outbox.publish(event, {"product_id": p.pk, "n": 1, **extra}, aggregate=("product", p.pk)) for p in products
        ]


def _stocks(products: list[Product]) -> list[int]:
    by_id = dict(Product.objects.filter(pk__in=[p.pk for p in products]).values_list("pk", "stock_quantity"))
    return [by_id[p.pk] for p in products]


def _statuses(messages: list[OutboxMessage]) -> list[str]:
    by_id = dict(OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).values_list("pk", "status"))
    return [by_id[m.pk] for m in messages]


def _relay(n: int) -> int:
    """A relay pass whose claim comes back full (``n`` due): the relay is behind, so it batches."""
    return outbox_relay_drain(batch_size=n)


def _due_now(redis_conn: Redis, job_id: str, queue: str = "default") -> None:
    """Skip a scheduled retry's wait (the backoff is seconds; the test need not sleep through it)."""
    key = get_queue(queue).scheduled_job_registry.key
    assert redis_conn.zscore(key, job_id) is not None, f"{job_id} is not scheduled"
    redis_conn.zadd(key, {job_id: 0})


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=worker_env(), cwd=settings.BASE_DIR, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


@pytest.fixture
def per_job_50(settings: object) -> Iterator[None]:
    settings.OUTBOX_MESSAGES_PER_JOB = 50  # type: ignore[attr-defined]  # the shipped default, pinned here
    yield


def test_messages_of_the_same_routes_share_jobs_and_each_is_handled_once(redis_conn: Redis, per_job_50: None) -> None:
    plain, fanned, alone = _products(120), _products(3), _products(2)
    messages = _publish(plain) + _publish(fanned, "test.fan_out") + _publish(alone, "test.unbatched")
    assert _relay(125) == 125
    default, high = get_queue("default").get_jobs(), get_queue("high").get_jobs()
    batches = [j for j in default if j.func_name == "outbox.jobs.deliver_batch"]
    assert sorted(len(j.args[3]) + 1 for j in batches) == [3, 20, 50, 50]  # 120 in 50s, the fan-out's 3
    assert [j.func_name for j in default if j not in batches] == ["outbox.jobs.deliver"] * 2  # batch=1: its own
    (fan_high,) = high
    (fan_default,) = [j for j in batches if len(j.args[3]) == 2]
    # Both routes of a fan-out carry the same messages, and each message records route 0's job.
    assert fan_high.args[0] == fan_default.args[0] and fan_high.args[3] == fan_default.args[3]
    assert (fan_default.args[4], fan_high.args[4]) == (0, 1)
    assert fan_high.id == fan_default.id[:-1] + "1"
    for message in OutboxMessage.objects.filter(event_type="test.fan_out"):
        assert message.job_id == fan_default.id
    first = OutboxMessage.objects.get(pk=messages[0].pk)
    assert first.status == Status.DISPATCHED and first.job_id.startswith(BATCH_PREFIX)
    # A batch's timeout fits it: twice one message's (each message starts only with its own time left).
    assert batches[0].args[5] == {"queue": "default", "timeout": 300, "tries": 5}
    assert batches[0].timeout == 600
    assert run_worker("high", "default", "--burst").returncode == 0
    assert set(_statuses(messages)) == {Status.PROCESSED}
    assert _stocks(plain + alone) == [1] * 122
    assert _stocks(fanned) == [3] * 3  # add_stock + add_stock_twice, once each
    assert InboxEntry.objects.count() == 120 + 3 * 2 + 2


def test_batches_only_where_there_is_a_backlog(redis_conn: Redis, per_job_50: None) -> None:
    first = _publish(_products(30))
    assert outbox_relay_drain() == 30  # a claim of 500 not full, the queue empty: a job each
    assert sorted(carried()) == [m.pk for m in first]
    assert len(get_queue("default").get_jobs()) == 30
    _publish(_products(70))
    outbox_relay_drain()  # 100 jobs wait now: the workers are behind
    later = _publish(_products(30))
    outbox_relay_drain()
    batches = [j for j in get_queue("default").get_jobs() if j.func_name == "outbox.jobs.deliver_batch"]
    assert len(get_queue("default").get_jobs()) == 101 and len(batches) == 1
    assert sorted([batches[0].args[0], *(m for m, _ in batches[0].args[3])]) == [m.pk for m in later]
    # The relay behind (a full claim) batches too; OUTBOX_MESSAGES_PER_JOB=1 (per_job=1) never does.
    redis_conn.flushdb()
    behind = _publish(_products(40))
    assert outbox_relay_drain(batch_size=40, per_job=1) == 40
    assert len(get_queue("default").get_jobs()) == 40
    assert run_worker("default", "--burst").returncode == 0
    assert set(_statuses(behind)) == {Status.PROCESSED}


def test_a_failing_message_retries_alone_and_dead_letters_while_its_siblings_run_once(
    redis_conn: Redis, per_job_50: None
) -> None:
    products = _products(5)
    messages = _publish(products[:2], "test.flaky") + _publish(products[2:3], "test.flaky", fail="retry")
    messages += _publish(products[3:], "test.flaky")
    assert _relay(5) == 5
    assert [j.func_name for j in get_queue("default").get_jobs()] == ["outbox.jobs.deliver_batch"]
    flaky = messages[2]
    assert run_worker("default", "--burst").returncode == 0
    # The siblings are done, once; the failure rolled its own effect back and waits alone.
    assert _stocks(products) == [1, 1, 0, 1, 1]
    assert _statuses(messages) == [Status.PROCESSED] * 2 + [Status.DISPATCHED] + [Status.PROCESSED] * 2
    retry_id = single_job_id(flaky.pk, 1, 0)  # the id its own job would have: the coroner knows it
    retry = get_queue("default").fetch_job(retry_id)
    assert retry is not None
    assert (retry.func_name, retry.args) == (
        "outbox.jobs.deliver",
        [flaky.pk, "tests.outbox.handlers.add_stock_or_fail", 1],
    )
    assert retry.meta["tries"] == 3 and retry.retries_left == 1  # the batch was its first try
    assert not FailedJob.objects.exists()
    coroner = _manage("outbox_coroner", "--dispatched-after", "0")
    assert "dispatched, job lost: 0" in coroner.stdout  # a scheduled retry is alive, not lost
    _due_now(redis_conn, retry_id)
    assert run_worker("default", "--burst").returncode == 0  # its second try, alone
    _due_now(redis_conn, retry_id)
    assert run_worker("default", "--burst").returncode == 0  # its third and last
    assert _stocks(products) == [1, 1, 0, 1, 1]  # nobody ran twice
    assert _statuses(messages)[2] == Status.DEAD
    assert "the provider is down" in OutboxMessage.objects.get(pk=flaky.pk).last_error
    failed = FailedJob.objects.get()  # one ledger row, for that message, as its own job writes it
    assert (failed.job_id, failed.job_name, failed.args[0], failed.attempts) == (
        retry_id, "outbox.jobs.deliver", flaky.pk, 3,
    )  # fmt: skip
    assert set(_statuses(messages[:2] + messages[3:])) == {Status.PROCESSED}


def test_a_permanent_error_or_a_single_try_fails_at_once_into_the_ledger(redis_conn: Redis, per_job_50: None) -> None:
    products = _products(6)
    permanent = _publish(products[:3], "test.flaky", fail="permanent")
    once = _publish(products[3:4], "test.once", fail="retry") + _publish(products[4:], "test.once")
    assert _relay(6) == 6
    assert run_worker("default", "--burst").returncode == 0
    assert _stocks(products) == [0, 0, 0, 0, 1, 1]
    assert _statuses(permanent + once) == [Status.DEAD] * 4 + [Status.PROCESSED] * 2
    rows = {row.args[0]: row for row in FailedJob.objects.all()}
    assert sorted(rows) == sorted(m.pk for m in permanent + once[:1])
    assert {row.attempts for row in rows.values()} == {1}
    assert rows[permanent[0].pk].exception_class == "queueing.definitions.PermanentError"
    assert rows[once[0].pk].job_id == single_job_id(once[0].pk, 1, 0)
    assert get_queue("default").scheduled_job_registry.count == 0  # nothing left to retry
    # A batch settling the same failure again (run twice) records it once.
    message = permanent[0]
    policy = Policy(queue="default", timeout=300, tries=3)
    report = outbox_deliver_batch(
        deliveries=[(message.pk, 1)], handler="tests.outbox.handlers.add_stock_or_fail", index=0, policy=policy
    )
    assert report.dead == [message.pk] and FailedJob.objects.count() == 4


def test_a_batch_delivered_twice_does_nothing_twice(redis_conn: Redis, per_job_50: None) -> None:
    products = _products(10)
    messages = _publish(products)
    _relay(10)
    (batch,) = get_queue("default").get_jobs()
    # The same batch again under another id (a relay that died before its commit, a replay by hand).
    variant = outbox.jobs.deliver_batch.with_options(queue="default")
    enqueue_batch_rollback_unsafe([(variant, tuple(batch.args), "outbox-batch-copy")])
    assert run_worker("default", "--burst").returncode == 0
    assert _stocks(products) == [1] * 10
    assert InboxEntry.objects.count() == 10
    assert set(_statuses(messages)) == {Status.PROCESSED}
    # A replay sends them all again, in a batch; the inbox skips every one.
    assert outbox_replay(ids=[m.pk for m in messages]) == 10
    _relay(10)
    assert sorted(carried()) == [m.pk for m in messages]
    assert run_worker("default", "--burst").returncode == 0
    assert _stocks(products) == [1] * 10
    assert set(_statuses(messages)) == {Status.PROCESSED}


def test_a_worker_sigkilled_mid_batch_loses_nothing_and_duplicates_nothing(
    redis_conn: Redis, workers: list[subprocess.Popen[str]], per_job_50: None
) -> None:
    products = _products(12)
    messages = _publish(products, "test.sleepy", sleep=0.4)
    _relay(12)
    assert [j.func_name for j in get_queue("default").get_jobs()] == ["outbox.jobs.deliver_batch"]
    victim = start_worker("default", "--sleep", "1")
    workers.append(victim)
    wait_for(lambda: sum(_stocks(products)) >= 3, timeout=60, step=0.02)
    victim.send_signal(signal.SIGKILL)  # mid-batch: some delivered, one in hand, the rest not started
    victim.wait(timeout=10)
    done = sum(_stocks(products))
    assert 3 <= done < 12
    # The claim expires, the reaper runs the batch again: the inbox skips what was done.
    workers.append(start_worker("default", "--sleep", "1"))
    wait_for(lambda: set(_statuses(messages)) == {Status.PROCESSED}, timeout=150, step=0.5)
    assert _stocks(products) == [1] * 12
    assert InboxEntry.objects.count() == 12
    assert not FailedJob.objects.exists()
    assert _manage("outbox_coroner", "--dispatched-after", "0").returncode == 0  # nothing stuck


def test_a_batch_stopped_by_an_operator_ends_the_message_in_hand_and_hands_the_rest_on(
    redis_conn: Redis, workers: list[subprocess.Popen[str]], per_job_50: None
) -> None:
    products = _products(8)
    messages = _publish(products, "test.sleepy", sleep=0.5)
    _relay(8)
    (batch,) = get_queue("default").get_jobs()
    workers.append(start_worker("default", "--sleep", "1"))
    wait_for(lambda: sum(_stocks(products)) >= 2, timeout=60, step=0.02)
    send_stop_job_command(redis_conn, batch.id)
    # The message in hand ends as its own job would (stopped: dead, one ledger row); the rest go on alone.
    failed = wait_for(lambda: FailedJob.objects.first(), timeout=30)
    assert failed.job_name == "outbox.jobs.deliver" and failed.exception_class.endswith("JobStopped")
    stopped = failed.args[0]
    others = [m for m in messages if m.pk != stopped]
    wait_for(lambda: set(_statuses(others)) == {Status.PROCESSED}, timeout=60, step=0.2)
    assert OutboxMessage.objects.get(pk=stopped).status == Status.DEAD
    assert [s for p, s in zip(products, _stocks(products), strict=True) if p.pk != _product_of(stopped)] == [1] * 7
    assert Product.objects.get(pk=_product_of(stopped)).stock_quantity == 0
    assert FailedJob.objects.count() == 1


def _product_of(message_id: int) -> int:
    return int(OutboxMessage.objects.get(pk=message_id).payload["product_id"])


def test_a_batch_starts_a_message_only_while_its_timeout_fits_and_hands_on_the_rest(redis_conn: Redis) -> None:
    products = _products(6)
    messages = _publish(products, "test.slow")  # timeout=1: the batch may start messages for 1 s
    _relay(6)
    (batch,) = get_queue("default").get_jobs()
    assert batch.timeout == 2 and batch.args[5]["timeout"] == 1
    redis_conn.delete(get_queue("default").key)  # run it here instead, on a clock that says 0.4 s per message
    now = iter(x * 0.4 for x in range(100))
    deliveries = [(m.pk, 1) for m in messages]
    report = outbox_deliver_batch(
        deliveries=deliveries, handler="tests.outbox.handlers.add_stock_slowly", index=0,
        policy=Policy.from_json(batch.args[5]), clock=lambda: next(now),
    )  # fmt: skip
    assert report.delivered == 3 and report.handed_on == [m.pk for m in messages[3:]]
    assert sorted(carried()) == [m.pk for m in messages[3:]]  # each in a job of its own
    assert {j.id for j in get_queue("default").get_jobs()} == {single_job_id(m.pk, 1, 0) for m in messages[3:]}
    assert run_worker("default", "--burst").returncode == 0
    assert _stocks(products) == [1] * 6
    assert set(_statuses(messages)) == {Status.PROCESSED}


def test_a_batch_that_failed_for_good_hands_what_it_had_not_delivered_on(redis_conn: Redis) -> None:
    products = _products(5)
    messages = _publish(products)
    _relay(5)
    (batch,) = get_queue("default").get_jobs()
    redis_conn.delete(get_queue("default").key)
    for message in messages[:2]:  # delivered before the batch's worker died, twice
        outbox_deliver(message_id=message.pk, handler="tests.outbox.handlers.add_stock", attempt=1)
    # What the worker (or the reaper) calls once the batch job is out of tries.
    definition = outbox.jobs.deliver_batch
    assert definition.on_failure is not None
    definition.on_failure(RuntimeError("worker lost"), *batch.args)
    assert sorted(carried()) == [m.pk for m in messages[2:]]
    definition.on_failure(RuntimeError("worker lost"), *batch.args)  # settled twice: no second copy
    assert get_queue("default").count == 3
    assert run_worker("default", "--burst").returncode == 0
    assert _stocks(products) == [1] * 5
    assert set(_statuses(messages)) == {Status.PROCESSED}


def test_the_coroner_finds_lost_batches_and_leaves_live_ones_alone(redis_conn: Redis, per_job_50: None) -> None:
    products = _products(6)
    messages = _publish(products, "test.fan_out")
    _relay(6)
    assert len(get_queue("default").get_jobs()) == len(get_queue("high").get_jobs()) == 1
    alive = _manage("outbox_coroner", "--dispatched-after", "0")
    assert "dispatched, job lost: 0" in alive.stdout and alive.returncode == 0
    # Route 0's batch gone, route 1's (found from the id the messages record) still queued: not lost.
    (route0,) = get_queue("default").get_jobs()
    redis_conn.delete(route0.key, get_queue("default").key)
    alive = _manage("outbox_coroner", "--dispatched-after", "0")
    assert "dispatched, job lost: 0" in alive.stdout
    redis_conn.flushdb()  # Redis lost its data
    report = _manage("outbox_coroner", "--dispatched-after", "0", "--redispatch")
    assert report.returncode == 1 and "dispatched, job lost: 6" in report.stdout
    assert run_worker("high", "default", "--burst").returncode == 0
    assert _stocks(products) == [3] * 6
    assert set(_statuses(messages)) == {Status.PROCESSED}
