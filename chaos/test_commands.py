"""Bad arguments to every management command of ours: a usage error, nothing changed.

DESIGN §7: an unknown command argument is a usage error with exit status 2,
and an error message says what was wrong. Each case runs ``manage.py`` as a
real process against seeded data (a tenant with a stale order, a failed job
in the ledger, a pending outbox message, a draft campaign, a queued job) and
must exit 2 with a message on stderr (no traceback) while every table's rows
and every Redis key stay exactly as they were.

The commands are enumerated from ``get_commands()``: a new command in one of
our apps fails ``test_every_command_has_bad_input_cases`` until it gets cases
here. Nonexistent ids are usage errors too (exit 2, "nothing was changed"),
as ``queue_retry``/``queue_forget`` established: ``campaign_send 999999`` and
an ``outbox_replay`` range that selects nothing exit 2 as well. So does an
empty ``--tenant ''`` (a script's unset variable), which must not widen to
every tenant. Not a bad input: ``queue_locks --release`` of a well-formed key
that no lock holds says "No such lock" and exits 0 (releasing is idempotent).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import django_rq
import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.db import connection, transaction
from django.utils import timezone

import outbox
from chaos import jobs
from chaos.cluster import Cluster
from marketing.models import Campaign, Subscriber
from orders.models import Order
from outbox.models import OutboxMessage
from queueing.models import FailedJob
from tests.factories import OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)

OUR_APPS = frozenset(
    {"queueing", "outbox", "webhooks", "orders", "tenants", "marketing", "analytics", "appointments", "config"}
)
# Long-running processes: a bad argument must stop them before they start.
PROCESSES = frozenset({"rqworker", "schedule_work", "queue_supervise", "outbox_process"})
LOOPBACK = "http://127.0.0.1:9/"  # nothing listens there; no case may get as far as sending
UNKNOWN = "--no-such-option"
WORKERS = 4  # ~1 s of CPU per Django start; more would only queue on the 2 cores
TIMEOUT = 45.0  # a bad argument that slips through and starts a loop ends here, as a failure


@dataclass(frozen=True)
class Bad:
    args: tuple[str, ...]
    says: str  # what stderr must mention (case-insensitive): the thing that was wrong
    fast: bool = False


@dataclass(frozen=True)
class Seed:
    failed_job: int
    campaign: int
    outbox_message: int
    yesterday: str
    tomorrow: str


@dataclass(frozen=True)
class Invocation:
    command: str
    args: tuple[str, ...]
    says: str

    @property
    def argv(self) -> tuple[str, ...]:
        return (self.command, *self.args)


@dataclass
class Outcome:
    invocation: Invocation
    code: int | None
    stdout: str
    stderr: str
    problems: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # what this invocation changed, when run alone


def our_commands() -> dict[str, str]:
    """``{command: app}`` for every command an app of ours provides."""
    return {name: app for name, app in get_commands().items() if app in OUR_APPS}


@dataclass(frozen=True)
class Family:
    key: str
    title: str
    fault: str


# One table row each; every command of ours must fall into one (test_every_command_has_bad_input_cases).
FAMILIES = (
    Family("queue", "queue_* commands, purge", "unknown options, queues & kinds, bad/missing ids, malformed limits"),
    Family("processes", "rqworker, schedule_work, outbox_process, queue_supervise",
           "unknown queues, negative seconds, bad backoff, bad schedule path, bad batch size"),
    Family("outbox", "outbox_coroner/prune/replay", "reversed ranges, bad dates & ids, empty selection, negative ages"),
    Family("orders-marketing", "release_stale_orders, webhook_smoke_test, campaign_send",
           "bad/negative/missing ids, empty & unknown tenant, bad URL, timeout, secret"),
    Family("analytics", "analytics_sync, audit_tenant_limits, tracking_smoke_test",
           "reversed & future ranges, bad dates, empty & unknown tenant, bad URL, timeout"),
    Family("config", "seed_demo, ensure_admin", "negative counts, empty/invalid username, invalid e-mail"),
)  # fmt: skip


def family(command: str, app: str) -> str:
    if command in PROCESSES:
        return "processes"
    if app == "queueing":
        return "queue"
    if app in ("orders", "marketing", "webhooks"):
        return "orders-marketing"
    return app  # outbox, analytics, config; a new app's commands need a Family of their own


def valid_args(seed: Seed) -> dict[str, tuple[str, ...]]:
    """Arguments that would make a command run: the unknown option is added to these,
    so it is the only thing wrong (and a command that ignored it would act)."""
    return {
        "analytics_sync": ("--from", seed.yesterday),
        "campaign_send": (str(seed.campaign),),
        "queue_continue": ("default",),
        "queue_pause": ("default",),
        "queue_clear": ("default", "--force"),
        "queue_forget": (str(seed.failed_job),),
        "queue_retry": (str(seed.failed_job),),
        "webhook_smoke_test": ("--url", LOOPBACK),
        "outbox_replay": ("--from-id", str(seed.outbox_message)),
        "rqworker": ("--burst",),
        "queue_supervise": ("--check",),
    }


def bad_cases(seed: Seed) -> dict[str, list[Bad]]:
    """The bad inputs of each command, besides the unknown option every command gets.

    Where a mistaken acceptance would run a loop, the case adds the flag that makes
    the command finish (``--burst``, ``--check``, ``--once``), so a slipped-through
    case shows up as exit 0 and a change rather than as a hang.
    """
    day, failed, campaign = seed.yesterday, str(seed.failed_job), str(seed.campaign)
    ids = [
        Bad(("abc",), "not a failed-job id"),
        Bad(("-5",), "not a failed-job id"),
        Bad(("999999",), "no failed job with id 999999", fast=True),
        Bad((failed, "999999"), "no failed job with id 999999"),  # one good id does not let the rest through
        Bad((), "required: ids"),
    ]
    return {
        "analytics_sync": [
            Bad(("--from", "2024-03-10", "--to", "2024-03-01"), "is after --to", fast=True),
            Bad(("--from", "2024-02-30"), "not a date"),
            Bad(("--to", day), "required: --from"),
            Bad(("--from", day, "--to", seed.tomorrow), "in the future"),
            Bad(("--from", "2015-01-01", "--to", day), "at most 731 days"),
            Bad(("--from", day, "--tenant", "no-such-tenant"), "no tenant with slug 'no-such-tenant'"),
            Bad(("--from", day, "--tenant", ""), "no tenant with slug ''"),
        ],
        "audit_tenant_limits": [
            Bad(("--tenant", "no-such-tenant"), "no tenant with slug 'no-such-tenant'"),
            Bad(("--tenant", ""), "no tenant with slug ''"),
        ],
        "ensure_admin": [
            Bad(("--username", ""), "username", fast=True),
            Bad(("--username", "no spaces allowed!"), "username"),
            Bad(("--email", "not-an-e-mail"), "--email 'not-an-e-mail'"),
        ],
        "seed_demo": [
            Bad(("--tenants", "-1"), "expected zero or more"),
            Bad(("--orders", "many"), "expected a whole number"),
        ],
        "campaign_send": [
            Bad(("abc",), "invalid int value"),
            Bad(("-5",), "no campaign with id -5"),
            Bad(("999999",), "no campaign with id 999999"),
            Bad(("99999999999999999999",), "no campaign with id 99999999999999999999"),
            Bad((campaign, "--resume"), "is a draft"),
            Bad((), "required: ID"),
        ],
        "release_stale_orders": [
            Bad(("--tenant", ""), "no tenant with slug ''", fast=True),
            Bad(("--tenant", "no-such-tenant"), "no tenant with slug 'no-such-tenant'"),
            Bad(("--older-than", "-30"), "at least 1 minute"),
            Bad(("--older-than", "half-an-hour"), "invalid int value"),
        ],
        "tracking_smoke_test": [
            Bad(("--url", "ftp://127.0.0.1/"), "must be an http(s) URL"),
            Bad(("--wait", "-1"), "positive number of seconds"),
            Bad(("--timeout", "soon"), "expected seconds"),
        ],
        "webhook_smoke_test": [
            Bad(("--url", "ftp://127.0.0.1/"), "must be an http(s) URL"),
            Bad(("--url", LOOPBACK, "--wait", "0"), "positive number of seconds"),
            Bad((), "required: --url"),
            Bad(("--url", LOOPBACK, "--timeout", "-1"), "positive number of seconds"),
            Bad(("--url", LOOPBACK, "--timeout", "soon"), "expected seconds"),
            Bad(("--url", LOOPBACK, "--secret", "whsec_x"), "cannot sign with that secret"),
        ],
        "outbox_coroner": [
            Bad(("--redispatch", "--pending-after", "-5"), "--pending-after"),
            Bad(("--dispatched-after", "soon"), "--dispatched-after"),
            Bad(("--limit", "-1"), "--limit"),
        ],
        "outbox_process": [
            Bad(("--batch-size", "0"), "batch size must be 1..10000"),
            Bad(("--batch-size", "lots"), "expected a whole number"),
            Bad(("--loop", "--max-time", "-1"), "positive number of seconds"),
        ],
        "outbox_prune": [
            Bad(("--days", "-1"), "--days must be"),
            Bad(("--batch-size", "0"), "--batch-size"),
        ],
        "outbox_replay": [
            Bad((), "give a range"),
            Bad(("--from-id", "10", "--to-id", "5"), "reversed range", fast=True),
            Bad(("--since", "2024-03-10", "--until", "2024-03-01"), "reversed range"),
            Bad(("--since", "last tuesday"), "not an ISO 8601"),
            Bad(("--since", "2024-02-30T00:00"), "not an ISO 8601"),
            Bad(("--from-id", "abc"), "--from-id"),
            Bad(("--from-id", "-5", "--to-id", "3"), "--from-id"),
            Bad(("--from-id", "999999", "--to-id", "1000000"), "no outbox message"),
            Bad(("--from-id", "1", "--event", ""), "must not be empty"),
        ],
        "queue_clear": [
            Bad((), "required: queue"),
            Bad(("nosuch", "--force"), "unknown queue 'nosuch'"),
            Bad(("default",), "add --force"),
        ],
        "purge": [
            Bad(("--only", "nosuch"), "unknown kind 'nosuch'", fast=True),
            Bad(("--only", ""), "must not be empty"),
            Bad(
                ("--only", "interactions,nosuch"), "unknown kind 'nosuch'"
            ),  # one good kind does not let the rest through
            Bad(("--tenant", "nobody"), "unknown tenant 'nobody'"),
            Bad(("--tenant", ""), "must not be empty"),
        ],
        "queue_topology": [
            Bad(("--supervisord", "nosuch"), "invalid choice: 'nosuch'"),
            Bad(("--supervisord", "pools", "--prefix", "vito workers"), "--prefix 'vito workers'"),
        ],
        "queue_continue": [
            Bad((), "required: queue"),
            Bad(("nosuch",), "unknown queue 'nosuch'"),
        ],
        "queue_pause": [
            Bad(("nosuch",), "unknown queue 'nosuch'"),
            Bad(("default", "high"), "unrecognized arguments: high"),
        ],
        "queue_failed": [
            Bad(("--limit", "-1"), "--limit"),
            Bad(("--queue", "nosuch"), "unknown queue 'nosuch'"),
            Bad(("--queue", ""), "must not be empty"),
        ],
        "queue_flush": [
            Bad(("--hours", "-1"), "--hours cannot be negative"),
            Bad(("--hours", "a-day"), "invalid int value"),
        ],
        "queue_forget": ids,
        "queue_retry": [
            *ids,
            Bad(("all", "--queue", "nosuch"), "unknown queue 'nosuch'"),
            Bad(("all", "--queue", ""), "must not be empty"),
            Bad((failed, "--queue", "default"), "--queue only goes with 'all'"),
        ],
        "queue_health": [Bad(("--json", "now"), "unrecognized arguments: now")],
        "queue_locks": [
            Bad(("--release", "not-a-lock"), "not a unique-job lock"),
            Bad(("--release", "x", "--release-all"), "not allowed with"),
        ],
        "queue_monitor": [
            Bad(("default:abc",), "malformed limit 'default:abc'", fast=True),
            Bad(("nosuch:5",), "unknown queue 'nosuch'"),
            Bad(("default",), "malformed limit 'default'"),
            Bad(("default:-1",), "malformed limit 'default:-1'"),
            Bad(("default:1", "default:2"), "given twice"),
        ],
        "queue_restart": [Bad(("now",), "unrecognized arguments: now")],
        "queue_snapshot": [
            Bad(("--catch-up", "0"), "--catch-up"),
            Bad(("--catch-up", "289"), "--catch-up"),
        ],
        "queue_supervise": [
            Bad(("--check", "--drain", "-1"), "positive number of seconds"),
            Bad(("--check", "--drain", "soon"), "expected seconds"),
        ],
        "queue_terminate": [
            Bad(("--timeout", "0"), "positive number of seconds"),
            Bad(("--wait", "--timeout", "soon"), "expected seconds"),
        ],
        "rqworker": [
            Bad(("nosuch", "--burst"), "unknown queue(s): nosuch", fast=True),
            Bad(("--burst", "--sleep", "-1"), "expected a positive number"),
            Bad(("--burst", "--max-jobs", "1.5"), "expected a whole number"),
            Bad(("--burst", "--backoff", "a,b"), "expected seconds like 10,30,60"),
            Bad(("--burst", "--backoff", "exp:x"), "expected exp:BASE:CAP"),
            Bad(("--burst", "--backoff", "10,-5"), "cannot be negative"),
            Bad(("--burst", "--serializer", "pickle"), "jobs are JSON"),
            Bad(("--burst", "--concurrency", "0"), "expected a positive number", fast=True),
            Bad(("--burst", "--concurrency", "-4"), "expected a positive number"),
            Bad(("--burst", "--concurrency", "many"), "expected a number"),
        ],
        "schedule_work": [
            Bad(("--once", "--schedule", "no.such.SCHEDULE"), "cannot load schedule"),
            Bad(("--once", "--schedule", "config.settings.DEBUG"), "not a schedule"),
            Bad(("--max-time", "-1"), "positive number of seconds"),
            Bad(("--once", "--max-time", "soon"), "expected seconds"),
        ],
    }


def invocations(seed: Seed, *, fast: bool, only: str | None = None) -> list[Invocation]:
    """The fast subset: the unknown option for every command plus the cases marked fast;
    otherwise the other cases, of family ``only``."""
    valid = valid_args(seed)
    cases = bad_cases(seed)
    out: list[Invocation] = []
    for command, app in sorted(our_commands().items()):
        if only is not None and family(command, app) != only:
            continue
        if fast:
            out.append(Invocation(command, (*valid.get(command, ()), UNKNOWN), f"unrecognized arguments: {UNKNOWN}"))
        out += [Invocation(command, bad.args, bad.says) for bad in cases.get(command, []) if bad.fast == fast]
    return out


# --------------------------------------------------------------------------- seed and state


def seed_data() -> Seed:
    """Rows and Redis keys a command could touch if it acted on a bad argument."""
    product = ProductFactory.create(stock_quantity=5)
    tenant = product.tenant
    ProductFactory.create_batch(2, tenant=tenant)
    stale = OrderFactory.create(tenant=tenant)  # what release_stale_orders would cancel
    Order.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=2))
    OrderFactory.create(tenant=tenant, status=Order.Status.PENDING)
    failed = FailedJob.objects.create(
        job_id="chaos-failed-1", queue="default", job_name="chaos.jobs.slow_effect", args=[product.pk, 0],
        exception_class="RuntimeError", message="boom", tenant_id=tenant.pk,
    )  # fmt: skip
    campaign = Campaign.objects.create(tenant=tenant, subject="Spring sale", body="…")
    Subscriber.objects.create(tenant=tenant, email="reader@example.com")
    with transaction.atomic():
        message = outbox.publish("chaos.tally", {"product_id": product.pk}, aggregate=("product", product.pk))
    # A pending message older than any threshold a slipped-through option could set.
    OutboxMessage.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(hours=1), available_at=timezone.now() - timedelta(hours=1)
    )
    jobs.slow_effect.dispatch(product.pk, 0)  # a waiting job a stray worker would take
    today = timezone.localdate()
    return Seed(
        failed_job=failed.pk, campaign=campaign.pk, outbox_message=message.pk,
        yesterday=(today - timedelta(days=1)).isoformat(), tomorrow=(today + timedelta(days=1)).isoformat(),
    )  # fmt: skip


def db_state() -> dict[str, tuple[int, str]]:
    """``{table: (rows, digest of their contents)}`` for every model's table."""
    state: dict[str, tuple[int, str]] = {}
    tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True) if model._meta.managed}
    with connection.cursor() as cursor:
        for table in sorted(tables):
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {quoted} t"  # noqa: S608 - model table names
            )
            count, digest = cursor.fetchone()
            state[table] = (int(count), str(digest))
    return state


def redis_state() -> dict[str, str]:
    """``{key: digest of its value}``: DBSIZE and every queue's length are in here."""
    conn = django_rq.get_connection("default")
    state = {}
    for key in conn.scan_iter(count=1000):
        value = conn.dump(key)
        state[key.decode(errors="replace")] = hashlib.sha256(value or b"").hexdigest()
    return state


@dataclass(frozen=True)
class State:
    db: dict[str, tuple[int, str]]
    redis: dict[str, str]

    @classmethod
    def now(cls) -> State:
        return cls(db_state(), redis_state())

    def changes_since(self, before: State) -> list[str]:
        changes = []
        for table, (rows, digest) in self.db.items():
            old_rows, old_digest = before.db.get(table, (0, ""))
            if rows != old_rows:
                changes.append(f"{table}: {old_rows} → {rows} rows")
            elif digest != old_digest:
                changes.append(f"{table}: rows updated")
        for key in sorted(set(self.redis) | set(before.redis)):
            if key not in before.redis:
                changes.append(f"redis {key}: added")
            elif key not in self.redis:
                changes.append(f"redis {key}: removed")
            elif self.redis[key] != before.redis[key]:
                changes.append(f"redis {key}: changed")
        return changes


def queue_lengths() -> dict[str, int]:
    return {name: django_rq.get_queue(name).count for name in settings.RQ_QUEUES}


# --------------------------------------------------------------------------- running


def _text(output: str | bytes | None) -> str:
    # TimeoutExpired carries bytes even when the run asked for text.
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def run_one(cluster: Cluster, invocation: Invocation) -> Outcome:
    try:
        done = cluster.run(*invocation.argv, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        return Outcome(invocation, None, _text(exc.stdout), _text(exc.stderr), [f"still running after {TIMEOUT:g}s"])
    return Outcome(invocation, done.returncode, done.stdout, done.stderr)


def run_all(cluster: Cluster, batch: list[Invocation]) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(lambda invocation: run_one(cluster, invocation), batch))


def judge_usage_error(outcome: Outcome) -> None:
    """Exit 2, no traceback, and stderr names what was wrong."""
    if outcome.code != 2:
        outcome.problems.append(f"exit {outcome.code}, expected 2")
    if "Traceback" in outcome.stderr + outcome.stdout:
        outcome.problems.append("traceback instead of a message")
    if outcome.invocation.says.lower() not in outcome.stderr.lower():
        outcome.problems.append(f"stderr does not say {outcome.invocation.says!r}")


def find_culprits(cluster: Cluster, outcomes: list[Outcome]) -> None:
    """After a change: run invocations again one by one to tell which ones act.

    The ones that did not exit 2 are the suspects; all of them if those do nothing.
    (A change already done may not show twice, so this can find fewer.)
    """
    suspects = [o for o in outcomes if o.code != 2]
    for group in (suspects, [o for o in outcomes if o.code == 2]):
        for outcome in group:
            before = State.now()
            with contextlib.suppress(subprocess.TimeoutExpired):
                cluster.run(*outcome.invocation.argv, timeout=TIMEOUT)
            outcome.changed = State.now().changes_since(before)
        if any(o.changed for o in group):
            return


def describe(outcome: Outcome) -> str:
    tail = (outcome.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300]
    return f"manage.py {' '.join(outcome.invocation.argv)}: {', '.join(outcome.problems)} — {tail}"


def changed_count(outcomes: list[Outcome], unexplained: bool) -> int | str:
    """The row's "duplicated" column: invocations that changed something."""
    count = sum(bool(o.changed) for o in outcomes)
    return f"{count}+?" if unexplained else count


def check_batch(
    cluster: Cluster,
    batch: list[Invocation],
    judge: Callable[[Outcome], None],
    rows: Callable[[list[Outcome], bool], None],
) -> None:
    """Run ``batch`` in parallel between two snapshots; record rows; fail on any problem."""
    before = State.now()
    depth = queue_lengths()
    outcomes = run_all(cluster, batch)
    changes = State.now().changes_since(before)
    after_depth = queue_lengths()
    if changes:
        find_culprits(cluster, outcomes)
    unexplained = bool(changes) and not any(o.changed for o in outcomes)
    for outcome in outcomes:
        judge(outcome)
        if outcome.changed:
            outcome.problems.append(f"changed: {'; '.join(outcome.changed[:5])}")
    rows(outcomes, unexplained)
    problems = [describe(o) for o in outcomes if o.problems]
    if changes:
        problems.append(f"bad arguments changed state: {'; '.join(changes)}; queues {depth} → {after_depth}")
    if unexplained:
        problems.append("(no single invocation repeats the change: it was already done)")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- scenarios


@pytest.mark.fast
def test_every_command_has_bad_input_cases() -> None:
    """A new command of ours fails here until it has cases; a removed one until they go."""
    commands = set(our_commands())
    cases = set(bad_cases(Seed(1, 1, 1, "2024-01-01", "2024-01-02")))
    assert "rqworker" in commands and commands.isdisjoint({"rqscheduler", "rqstats"})
    keys = {group.key for group in FAMILIES}
    homeless = sorted(c for c, app in our_commands().items() if family(c, app) not in keys)
    assert not homeless, f"commands in no family (add a Family for them): {homeless}"
    assert not commands - cases, f"no bad-input cases for: {sorted(commands - cases)} (add them to bad_cases)"
    assert not cases - commands, f"cases for commands that no longer exist: {sorted(cases - commands)}"


@pytest.mark.fast
def test_unknown_options_and_key_bad_values_are_usage_errors(cluster: Cluster, record: Any) -> None:
    seed = seed_data()
    batch = invocations(seed, fast=True)

    def rows(outcomes: list[Outcome], unexplained: bool) -> None:
        record(f"all {len(our_commands())} commands: unknown option, key bad values",
               load=f"{len(outcomes)} invocations", fault="--no-such-option, bad ids, reversed range, default:abc",
               lost="–", duplicated=changed_count(outcomes, unexplained),
               passed=not unexplained and not any(o.problems for o in outcomes))  # fmt: skip

    check_batch(cluster, batch, judge_usage_error, rows)


@pytest.mark.parametrize("group", FAMILIES, ids=lambda group: group.key)
def test_bad_arguments_are_usage_errors_and_change_nothing(group: Family, cluster: Cluster, record: Any) -> None:
    seed = seed_data()
    batch = invocations(seed, fast=False, only=group.key)

    def rows(outcomes: list[Outcome], unexplained: bool) -> None:
        commands = len({o.invocation.command for o in outcomes})
        record(f"{group.title}: bad arguments", load=f"{len(outcomes)} invocations, {commands} commands",
               fault=group.fault, lost="–", duplicated=changed_count(outcomes, unexplained),
               passed=not unexplained and not any(o.problems for o in outcomes))  # fmt: skip

    check_batch(cluster, batch, judge_usage_error, rows)


def judge_help(outcome: Outcome) -> None:
    """``--help`` exits 0 and shows the description and every argument with its explanation."""
    command = outcome.invocation.command
    parser = load_command_class(our_commands()[command], command).create_parser("manage.py", command)
    text = " ".join(outcome.stdout.split())
    if outcome.code != 0:
        outcome.problems.append(f"exit {outcome.code}, expected 0")
    description = " ".join((parser.description or "").split())
    if not description or description[:60] not in text:
        outcome.problems.append("no description of what the command does")
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        name = action.option_strings[-1] if action.option_strings else str(action.metavar or action.dest)
        if name not in text:
            outcome.problems.append(f"{name} not in the help")
        elif not action.help:
            outcome.problems.append(f"{name} has no explanation")


def test_help_explains_every_argument(cluster: Cluster, record: Any) -> None:
    seed_data()
    batch = [Invocation(command, ("--help",), "") for command in sorted(our_commands())]

    def rows(outcomes: list[Outcome], unexplained: bool) -> None:
        record("--help of every command", load=f"{len(outcomes)} invocations",
               fault="none (exit 0, every argument explained)", lost="–",
               duplicated=changed_count(outcomes, unexplained),
               passed=not unexplained and not any(o.problems for o in outcomes))  # fmt: skip

    check_batch(cluster, batch, judge_help, rows)
