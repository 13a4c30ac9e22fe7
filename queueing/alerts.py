"""Alerts: conditions read from the queues' figures and the status providers,
e-mailed to the operators and logged once per condition per cool-down, with a
resolved notice, and recorded as AlertEvent rows.

Conditions (key ``<kind>:<subject>``):

- ``depth:<queue>`` — more than QUEUE_ALERT_DEPTH[queue] jobs waiting;
- ``wait:<queue>`` — the oldest job waited longer than QUEUE_ALERT_WAIT_SECONDS[queue];
- ``failure_rate:<queue>`` — more than QUEUE_ALERT_FAILURE_RATE of the last 5
  minutes' attempts failed (retried ones count), judged only from
  QUEUE_ALERT_FAILURE_MIN_JOBS attempts on: one failure of two jobs pages nobody;
- ``no_worker:<queue>`` — no live worker lists the queue (not for a paused queue, nor ``wait``);
- ``status:<provider>`` — a status provider (outbox, webhooks, health) reports a problem.

Who hears what, and the cool-down: docs/runtime.md, "Alerts"."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from redis import Redis
from redis.typing import EncodableT, FieldT

from lib.mail import send_templated
from lib.text import as_text
from queueing import keys, metrics, selectors, status
from queueing.dispatch import redis_connection
from queueing.models import AlertEvent

log = logging.getLogger(__name__)

WINDOW_MINUTES = 5  # the failure-rate window
DEFAULT_WAIT_SECONDS = 300  # for a queue QUEUE_ALERT_WAIT_SECONDS does not name
DASHBOARD_LINK = "/admin/queues/"


@dataclass(frozen=True)
class Condition:
    key: str  # "<kind>:<subject>", e.g. "depth:default", "status:outbox"
    firing: bool
    value: float | None
    message: str  # one sentence: what is wrong now (or that it is fine again)
    link: str = ""  # where an operator looks next


@dataclass(frozen=True)
class Thresholds:
    depth: dict[str, int]
    wait_s: dict[str, int]
    failure_rate: float
    failure_min_jobs: int

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(
            depth=dict(settings.QUEUE_ALERT_DEPTH),
            wait_s=dict(settings.QUEUE_ALERT_WAIT_SECONDS),
            failure_rate=settings.QUEUE_ALERT_FAILURE_RATE,
            failure_min_jobs=settings.QUEUE_ALERT_FAILURE_MIN_JOBS,
        )


@dataclass(frozen=True)
class Inputs:
    """Everything the conditions are judged from, read once."""

    queues: list[selectors.QueueStatus]
    recent: dict[str, metrics.Totals]  # per queue, the last WINDOW_MINUTES
    reports: dict[str, status.StatusReport]


def gather(conn: Redis) -> Inputs:
    totals = metrics.window(conn, minutes=WINDOW_MINUTES)
    return Inputs(
        queues=selectors.queue_statuses(conn),
        recent={name: t for (scope, name), t in totals.items() if scope == "q"},
        reports=status.reports(),
    )


# --------------------------------------------------------------------------- conditions


def depth_condition(queue: str, size: int, limit: int, *, key_prefix: str = "depth") -> Condition:
    return Condition(
        key=f"{key_prefix}:{queue}",
        firing=size > limit,
        value=float(size),
        message=f"queue {queue} has {size} job(s) waiting (limit {limit})",
        link=DASHBOARD_LINK,
    )


def wait_condition(queue: selectors.QueueStatus, limit: int) -> Condition:
    waited = queue.oldest_wait_s or 0.0
    paused = " (queue paused: not alerting)" if queue.paused else ""
    return Condition(
        key=f"wait:{queue.name}",
        firing=waited > limit and not queue.paused,
        value=round(waited, 1),
        message=f"the oldest job on queue {queue.name} has waited {waited:.0f}s (limit {limit}s){paused}",
        link=DASHBOARD_LINK,
    )


def failure_condition(queue: str, totals: metrics.Totals, thresholds: Thresholds) -> Condition:
    rate = totals.failure_rate
    judged = totals.jobs >= thresholds.failure_min_jobs
    sample = "" if judged else f"; too few to judge, alerting from {thresholds.failure_min_jobs}"
    return Condition(
        key=f"failure_rate:{queue}",
        firing=judged and rate > thresholds.failure_rate,
        value=round(rate, 4),
        message=(
            f"{totals.failed} of {totals.jobs} attempt(s) on queue {queue} failed in the last "
            f"{WINDOW_MINUTES} minutes ({rate:.1%}, limit {thresholds.failure_rate:.1%}{sample})"
        ),
        link="/admin/queueing/failedjob/",
    )


def worker_condition(queue: selectors.QueueStatus) -> Condition:
    if queue.workers:
        message = f"{queue.workers} live worker(s) consume queue {queue.name}"
    elif queue.paused:
        message = f"no live worker consumes queue {queue.name} (queue paused: not alerting)"
    else:
        message = f"no live worker consumes queue {queue.name}: start `rqworker {queue.name}` (see supervisord)"
    return Condition(
        key=f"no_worker:{queue.name}",
        firing=queue.workers == 0 and not queue.paused,
        value=float(queue.workers),
        message=message,
        link=DASHBOARD_LINK,
    )


def status_condition(name: str, report: status.StatusReport) -> Condition:
    return Condition(
        key=f"status:{name}",
        firing=bool(report.problems),
        value=float(len(report.problems)),
        message="; ".join(report.problems) or f"{report.title}: no problems",
        link=report.link,
    )


def evaluate(inputs: Inputs, thresholds: Thresholds | None = None) -> list[Condition]:
    """Every condition, firing or not (a not-firing one resolves an earlier alert)."""
    limits = thresholds or Thresholds.from_settings()
    out: list[Condition] = []
    for queue in inputs.queues:
        out.append(depth_condition(queue.name, queue.size, limits.depth.get(queue.name, 1000)))
        out.append(wait_condition(queue, limits.wait_s.get(queue.name, DEFAULT_WAIT_SECONDS)))
        out.append(failure_condition(queue.name, inputs.recent.get(queue.name, metrics.Totals()), limits))
        out.append(worker_condition(queue))
    out.extend(status_condition(name, report) for name, report in sorted(inputs.reports.items()))
    return out


# --------------------------------------------------------------------------- notification


@dataclass
class _State:
    firing: bool
    since: float  # when the current state began
    value: float | None = None
    emailed_at: float | None = None  # the last "firing" e-mail
    told: str = ""  # what the operators last heard: "firing", "resolved" or nothing yet

    @classmethod
    def load(cls, raw: bytes | str) -> _State:
        data = json.loads(raw)
        return cls(
            firing=bool(data.get("firing")),
            since=float(data.get("since", 0)),
            value=data.get("value"),
            emailed_at=data.get("emailed_at"),
            told=str(data.get("told", "")),
        )


@dataclass(frozen=True)
class Notice:
    condition: Condition
    kind: str  # "firing", "still firing", "resolved"
    since: float


def process(
    conn: Redis,
    conditions: Sequence[Condition],
    *,
    notifier: str = "checks",
    complete: bool = True,
    now: float | None = None,
) -> list[Notice]:
    """Compare ``conditions`` with the state of the last pass and tell the operators.

    - a condition that starts firing is e-mailed, unless its last "firing"
      e-mail is younger than QUEUE_ALERT_COOLDOWN (a flapping condition mails
      once per cool-down, not once per flap);
    - one that stays firing is e-mailed again once the cool-down has passed;
    - one that stops firing gets one "resolved" e-mail, if the operators last
      heard that it was firing;
    - every change of state is logged and written as an AlertEvent row.

    ``complete``: the conditions are every condition of this notifier, so one
    that was firing and is no longer checked (a queue or provider removed)
    resolves. Returns what was e-mailed (or would have been, with no recipients).
    """
    at = time.time() if now is None else now
    lock = conn.lock(keys.ALERTS_LOCK, timeout=120, blocking_timeout=30)
    if not lock.acquire():
        log.warning("alerts: another alert pass holds the lock; skipping this one")
        return []
    try:
        return _process(conn, conditions, notifier=notifier, complete=complete, at=at)
    finally:
        lock.release()


def _process(conn: Redis, conditions: Sequence[Condition], *, notifier: str, complete: bool, at: float) -> list[Notice]:
    state_key = keys.alert_state(notifier)
    previous = {as_text(k): _State.load(v) for k, v in conn.hgetall(state_key).items()}
    current = list(conditions)
    if complete:
        seen = {c.key for c in current}
        current += [
            Condition(key, False, None, f"{key} is no longer checked (its queue or provider is gone)")
            for key, state in previous.items()
            if key not in seen and state.firing
        ]
    cooldown = settings.QUEUE_ALERT_COOLDOWN
    notices: list[Notice] = []
    events: list[AlertEvent] = []
    states: dict[str, _State] = {}
    for cond in current:
        old = previous.get(cond.key)
        changed = cond.firing != (old.firing if old else False)
        state = _State(
            firing=cond.firing,
            since=at if changed or old is None else old.since,
            value=cond.value,
            emailed_at=old.emailed_at if old else None,
            told=old.told if old else "",
        )
        if changed:
            events.append(
                AlertEvent(
                    condition=cond.key,
                    state=AlertEvent.State.FIRING if cond.firing else AlertEvent.State.RESOLVED,
                    message=cond.message,
                    value=cond.value,
                )
            )
        if cond.firing:
            due = state.emailed_at is None or at - state.emailed_at >= cooldown
            if due:
                kind = "still firing" if state.told == "firing" and not changed else "firing"
                notices.append(Notice(cond, kind, state.since))
            if changed:
                log.error(
                    "alert firing: %s: %s%s",
                    cond.key,
                    cond.message,
                    "" if due else f" (not e-mailed: last e-mail {at - (state.emailed_at or at):.0f}s ago, cool-down)",
                )
        elif state.told == "firing":
            notices.append(Notice(cond, "resolved", state.since))
        if changed and not cond.firing:
            log.info("alert resolved: %s: %s", cond.key, cond.message)
        states[cond.key] = state

    firing_now = [c for c in current if c.firing]
    sent = _send(notices, firing_now) if notices else set()
    for notice in notices:
        if notice.condition.key in sent:
            state = states[notice.condition.key]
            state.told = "resolved" if notice.kind == "resolved" else "firing"
            if notice.kind != "resolved":
                state.emailed_at = at

    _record(events)
    # Only what matters for the next pass is kept: firing conditions, and quiet
    # ones whose last firing e-mail still damps a flap or whose resolution is owed.
    keep: dict[FieldT, EncodableT] = {
        key: json.dumps(asdict(s))
        for key, s in states.items()
        if s.firing or s.told == "firing" or (s.emailed_at is not None and at - s.emailed_at < cooldown)
    }
    drop = [key for key in previous if key not in keep and (complete or key in states)]
    with conn.pipeline() as pipe:
        if drop:
            pipe.hdel(state_key, *drop)
        if keep:
            pipe.hset(state_key, mapping=keep)
        pipe.execute()
    return [n for n in notices if n.condition.key in sent]


def _record(events: list[AlertEvent]) -> None:
    if not events:
        return
    try:
        AlertEvent.objects.bulk_create(events)
    except Exception:
        # PostgreSQL away (itself something to alert on): the e-mails went out and
        # the Redis state moves on, so the history misses these rows, nothing else.
        log.exception("alerts: could not record %d alert event(s)", len(events))


SEND_BUDGET = 25  # seconds; the job's timeout is 60 and EMAIL_TIMEOUT bounds one send


def recipients() -> list[str]:
    """QUEUE_ALERT_EMAILS, or else every active superuser's e-mail address."""
    if settings.QUEUE_ALERT_EMAILS:
        return list(settings.QUEUE_ALERT_EMAILS)
    users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _send(notices: Iterable[Notice], firing_now: list[Condition]) -> set[str]:
    """One e-mail per notice; returns the condition keys whose e-mail went out.
    A failed send is retried by the next pass (its state does not move on)."""
    try:
        to = recipients()
    except Exception:
        log.exception("alerts: cannot read the operators' addresses; set QUEUE_ALERT_EMAILS")
        return set()
    sent: set[str] = set()
    notices = list(notices)
    if not to:
        log.warning(
            "alerts: nobody to e-mail %d notice(s) to: set QUEUE_ALERT_EMAILS or give a superuser an e-mail address",
            len(notices),
        )
        return {n.condition.key for n in notices}
    # A slow SMTP server must not run the pass into its job timeout before the
    # state is saved (that would re-send everything next minute): stop sending
    # after SEND_BUDGET seconds; the rest go out on the next pass.
    deadline = time.monotonic() + SEND_BUDGET
    for notice in notices:
        if time.monotonic() > deadline:
            log.warning("alerts: e-mail budget of %ss used up; the remaining notices go out next pass", SEND_BUDGET)
            break
        subject, body = render(notice, firing_now)
        try:
            send_templated("alert", {"subject": subject, "body": body, "kind": notice.kind}, subject=subject, to=to)
        except Exception:
            log.exception(
                "alerts: could not e-mail %s (%s); retrying on the next pass", notice.condition.key, notice.kind
            )
            continue
        sent.add(notice.condition.key)
    return sent


def render(notice: Notice, firing_now: list[Condition]) -> tuple[str, str]:
    cond = notice.condition
    one_line = " ".join(cond.message.split())
    subject = f"[Vito] {notice.kind.upper()} {cond.key}: {one_line}"
    if len(subject) > 180:
        subject = subject[:179] + "…"
    since = datetime.fromtimestamp(notice.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        f"{notice.kind.upper()}: {cond.message}",
        "",
        f"Condition: {cond.key}",
        f"Value: {cond.value if cond.value is not None else '-'}",
        f"{'Resolved at' if notice.kind == 'resolved' else 'Firing since'}: {since}",
    ]
    if cond.link:
        lines.append(f"Look at: {settings.SITE_URL.rstrip('/')}{cond.link}")
    others = [c for c in firing_now if c.key != cond.key]
    if others:
        lines += ["", "Also firing now:", *(f"- {c.key}: {c.message}" for c in others)]
    lines += [
        "",
        f"A firing condition is e-mailed again every {settings.QUEUE_ALERT_COOLDOWN}s (QUEUE_ALERT_COOLDOWN) "
        "while it lasts, and once when it resolves. Thresholds: the QUEUE_ALERT_* settings.",
    ]
    return subject, "\n".join(lines) + "\n"


def check_alerts(conn: Redis | None = None, *, now: float | None = None) -> list[str]:
    """The scheduled pass: evaluate everything, notify; returns the firing keys."""
    conn = conn or redis_connection()
    conditions = evaluate(gather(conn))
    process(conn, conditions, notifier="checks", complete=True, now=now)
    return [c.key for c in conditions if c.firing]
