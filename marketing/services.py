"""Campaign sending: the request, the fan-out, one recipient's delivery, unsubscribing.

- ``campaign_send``: draft → sending, with a ``campaign.send_requested`` outbox
  message in the same transaction (the request survives a Redis outage).
- ``campaign_fan_out`` (run by the ``fan_out_campaign`` job): one delivery row per
  active subscriber, then one ``send_campaign_email`` job per open delivery,
  1,000 per Redis round trip. Safe to run again at any time.
- ``delivery_send``: claim → send → mark sent; the campaign becomes *sent* when
  no delivery is open any more.

Each e-mail goes out once per successful claim: a claim is a conditional
UPDATE that only one job (and its own retries) can win, so the duplicate jobs a
re-run of the fan-out creates are no-ops.

docs/marketing.md."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

import outbox
from lib import mail
from marketing.emails import campaign_message, describe_error
from marketing.models import Campaign, CampaignDelivery, Subscriber
from marketing.selectors import campaign_progress
from queueing.definitions import PermanentError

log = logging.getLogger(__name__)

Status = CampaignDelivery.Status
OPEN = (Status.PENDING, Status.SENDING)
CHUNK = 1000
# A claim older than this belongs to a job that is gone (killed, and then lost
# with Redis): the fan-out dispatches it again and a new job may take it over.
# Far longer than a send attempt can last (the job's timeout is 60 s).
STALE_CLAIM = timedelta(hours=1)

Outcome = Literal["sent", "skipped", "settled", "missing"]


class CampaignNotFound(LookupError):
    pass


class UndeliverableAddress(PermanentError):
    """The SMTP server refused the recipient: no retry will change that."""


class MessageError(PermanentError):
    """The e-mail could not be built (template, header): a code or data problem, not a transient one."""


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True)
class SendRequest:
    campaign_id: int
    status: str  # the campaign's status after the call
    started: bool  # this call moved it from draft to sending


def campaign_send(*, campaign_id: int, tenant_id: int | None = None) -> SendRequest:
    """Start sending a draft campaign (once: a campaign already sending or sent is left as it is).

    The fan-out runs in the background: the outbox relays ``campaign.send_requested``
    to ``marketing.handlers``, which queues ``fan_out_campaign``. ``tenant_id``
    scopes the lookup (another tenant's campaign is :class:`CampaignNotFound`).
    """
    with transaction.atomic():
        rows = Campaign.objects.select_for_update().filter(pk=campaign_id)
        if tenant_id is not None:
            rows = rows.filter(tenant_id=tenant_id)
        campaign = rows.first()
        if campaign is None:
            raise CampaignNotFound(f"no campaign with id {campaign_id}")
        if campaign.status != Campaign.Status.DRAFT:
            return SendRequest(campaign.pk, campaign.status, started=False)
        campaign.status = Campaign.Status.SENDING
        campaign.save(update_fields=["status"])
        outbox.publish(
            "campaign.send_requested",
            {"campaign_id": campaign.pk, "tenant_id": campaign.tenant_id},
            aggregate=("campaign", campaign.pk),
            tenant=campaign.tenant_id,
        )
    log.info("campaign %s: sending requested", campaign_id)
    return SendRequest(campaign_id, Campaign.Status.SENDING, started=True)


# --------------------------------------------------------------------------- fan-out


@dataclass(frozen=True)
class FanOut:
    created: int  # delivery rows this run added
    dispatched: int  # jobs this run queued (open deliveries, new or left over)


def campaign_fan_out(*, campaign_id: int, tenant_id: int | None = None, chunk_size: int = CHUNK) -> FanOut:
    """Create the deliveries of a sending campaign and queue one job per open delivery.

    Runs again safely (after a crash, a Redis loss, or by hand): existing
    deliveries are kept (the unique constraint), and every delivery still open
    is dispatched again — its job finds it sent, or claims it. Memory stays
    flat: delivery ids stream from a server-side cursor, ``chunk_size`` at a
    time. Not in a transaction: the deliveries must be committed before a
    worker looks for them, and each chunk is enqueued as soon as it is read.
    """
    from marketing.jobs import send_campaign_email

    if connection.in_atomic_block:
        raise RuntimeError("campaign_fan_out commits as it goes; call it outside transaction.atomic()")
    with transaction.atomic():
        # The lock orders us with campaign_complete_if_done: it cannot see "no
        # open delivery" while we are adding some.
        rows = Campaign.objects.select_for_update().filter(pk=campaign_id, status=Campaign.Status.SENDING)
        if tenant_id is not None:
            rows = rows.filter(tenant_id=tenant_id)
        campaign = rows.first()
        if campaign is None:
            log.info("campaign %s is not sending (draft, sent or gone); nothing to fan out", campaign_id)
            return FanOut(0, 0)
        created = _create_deliveries(campaign)
    dispatched = 0
    for ids in _open_delivery_ids(campaign_id, chunk_size):
        send_campaign_email.dispatch_many([(campaign.tenant_id, pk) for pk in ids], chunk_size=chunk_size)
        dispatched += len(ids)
    log.info("campaign %s: %d deliveries created, %d jobs queued", campaign_id, created, dispatched)
    campaign_complete_if_done(campaign_id=campaign_id)  # a campaign without recipients is done now
    return FanOut(created, dispatched)


def _create_deliveries(campaign: Campaign) -> int:
    # One INSERT … SELECT: subscriber ids never travel to Python (bench/marketing.py
    # measures it against bulk_create(ignore_conflicts=True) in chunks).
    delivery, subscriber = CampaignDelivery._meta.db_table, Subscriber._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {delivery} (campaign_id, subscriber_id, status, attempts, last_error, claimed_by)"  # noqa: S608 - table names from models
            f" SELECT %s, s.id, %s, 0, '', '' FROM {subscriber} s"
            " WHERE s.tenant_id = %s AND s.unsubscribed_at IS NULL ORDER BY s.id"
            " ON CONFLICT (campaign_id, subscriber_id) DO NOTHING",
            [campaign.pk, Status.PENDING, campaign.tenant_id],
        )
        return max(int(cursor.rowcount), 0)


def _open_delivery_ids(campaign_id: int, chunk_size: int) -> Iterator[list[int]]:
    stale = timezone.now() - STALE_CLAIM
    ids = (
        CampaignDelivery.objects.filter(campaign_id=campaign_id)
        .filter(Q(status=Status.PENDING) | Q(status=Status.SENDING, claimed_at__lt=stale))
        .order_by("id")
        .values_list("id", flat=True)
        .iterator(chunk_size=chunk_size)
    )
    chunk: list[int] = []
    for pk in ids:
        chunk.append(pk)
        if len(chunk) == chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def campaign_complete_if_done(*, campaign_id: int) -> bool:
    """Mark a sending campaign sent once none of its deliveries is open. True if this call did it.

    Every job calls this after its delivery's settlement has committed (see
    ``_complete_after_commit``), so the last one to commit sees all the
    others' rows settled; the conditional UPDATE lets only one caller flip
    the status.
    """
    still_open = CampaignDelivery.objects.filter(campaign_id=campaign_id, status__in=OPEN)
    if still_open.exists():  # the cheap answer for all but the last job
        return False
    with transaction.atomic():
        # Lock, then look again: a fan-out re-run adds deliveries under this
        # lock, and the second look is a new statement, so it sees them.
        if not Campaign.objects.select_for_update().filter(pk=campaign_id, status=Campaign.Status.SENDING).exists():
            return False
        if still_open.exists():
            return False
        done = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, sent_at=timezone.now()
        )
        if done:  # once: only one caller flips the status
            _announce_finished(campaign_id)
    if done:
        log.info("campaign %s sent: no open deliveries left", campaign_id)
    return bool(done)


def _announce_finished(campaign_id: int) -> None:
    campaign = Campaign.objects.get(pk=campaign_id)
    counts = campaign_progress(campaign_id=campaign_id)
    outbox.publish(
        "campaign.finished",
        {
            "campaign_id": campaign.pk,
            "name": campaign.subject,
            "sent": counts[Status.SENT],
            "failed": counts[Status.FAILED],
            "skipped": counts[Status.SKIPPED],
            "finished_at": campaign.sent_at.isoformat() if campaign.sent_at else None,
        },
        aggregate=("campaign", campaign.pk),
        tenant=campaign.tenant_id,
    )


def _complete_after_commit(campaign_id: int) -> None:
    # Checked inside an uncommitted transaction (the failure hook runs in the
    # ledger's), two last jobs could each still see the other's delivery open,
    # and neither would finish the campaign. After commit, the later one sees both.
    transaction.on_commit(lambda: campaign_complete_if_done(campaign_id=campaign_id), robust=True)


# --------------------------------------------------------------------------- one delivery


def delivery_precheck(*, tenant_id: int, delivery_id: int) -> Literal["send", "skipped", "settled", "missing"]:
    """Whether a job for this delivery has anything to send, before it spends a rate-limit slot.

    A delivery whose subscriber has unsubscribed since the fan-out is marked skipped here.
    """
    row = (
        CampaignDelivery.objects.filter(pk=delivery_id, campaign__tenant_id=tenant_id)
        .values_list("status", "subscriber__unsubscribed_at")
        .first()
    )
    if row is None:
        return "missing"
    status, unsubscribed_at = row
    if status not in OPEN:
        return "settled"
    if unsubscribed_at is not None and status == Status.PENDING:
        return "skipped" if delivery_skip(delivery_id=delivery_id) else "settled"
    return "send"


def delivery_send(*, tenant_id: int, delivery_id: int, claim: str) -> Outcome:
    """Send one recipient's e-mail, at most once per successful claim.

    ``claim`` is the caller's job id: retries of the same job may take their
    own claim again (after a killed attempt), other jobs may not. A failed
    send puts the delivery back to pending with ``last_error`` and re-raises
    for the job's retry; an address refused with a 5xx fails at once
    (:class:`UndeliverableAddress`), a 4xx refusal is retried. A deleted
    delivery (or another tenant's id) is a no-op. The e-mail goes out on this
    thread's SMTP connection (``lib.mail.send``).
    """
    delivery = (
        CampaignDelivery.objects.select_related("campaign__tenant", "subscriber")
        .filter(pk=delivery_id, campaign__tenant_id=tenant_id)
        .first()
    )
    if delivery is None:
        log.info("delivery %s of tenant %s is gone; nothing to send", delivery_id, tenant_id)
        return "missing"
    if delivery.subscriber.unsubscribed_at is not None:
        return "skipped" if delivery_skip(delivery_id=delivery_id, claim=claim) else "settled"
    try:
        message = campaign_message(delivery)
    except Exception as exc:
        raise MessageError(f"campaign {delivery.campaign_id}: the e-mail cannot be built: {exc}") from exc
    if not _claim(delivery_id=delivery_id, claim=claim):
        return "settled"  # sent, skipped or failed already, or another job holds it
    try:
        # This thread's SMTP connection, kept open from one job to the next; a
        # lost one is reopened (lib/mail.py says when the message is resent).
        mail.send(message)
    except smtplib.SMTPRecipientsRefused as exc:
        _release(delivery_id=delivery_id, claim=claim, error=describe_error(exc))
        if any(code < 500 for code, _reply in exc.recipients.values()):
            raise  # 4xx (greylisting, throttling): temporary, the job's retries decide
        raise UndeliverableAddress(f"{delivery.subscriber.email} refused: {describe_error(exc)}") from exc
    except BaseException as exc:
        # Connection errors, timeouts, temporary (and some permanent) SMTP
        # refusals: give the claim back and let the job's retries decide.
        _release(delivery_id=delivery_id, claim=claim, error=describe_error(exc))
        raise
    now = timezone.now()
    # By claim, not status: if a final-failure hook marked it failed meanwhile,
    # the e-mail did go out, and "sent" is the truth.
    CampaignDelivery.objects.filter(pk=delivery_id, claimed_by=claim).update(
        status=Status.SENT, sent_at=now, last_error=""
    )
    _complete_after_commit(delivery.campaign_id)
    return "sent"


def _claim(*, delivery_id: int, claim: str) -> bool:
    now = timezone.now()
    return bool(
        CampaignDelivery.objects.filter(pk=delivery_id)
        .filter(
            Q(status=Status.PENDING)
            | Q(status=Status.SENDING, claimed_by=claim)  # our own attempt, killed before it finished
            | Q(status=Status.SENDING, claimed_at__lt=now - STALE_CLAIM)
        )
        .update(status=Status.SENDING, claimed_by=claim, claimed_at=now, attempts=F("attempts") + 1)
    )


def _release(*, delivery_id: int, claim: str, error: str) -> None:
    CampaignDelivery.objects.filter(pk=delivery_id, claimed_by=claim, status=Status.SENDING).update(
        status=Status.PENDING, last_error=error[:2000]
    )


def delivery_skip(*, delivery_id: int, claim: str | None = None) -> bool:
    """The subscriber has unsubscribed: settle the delivery as skipped (if still pending, or ours)."""
    open_rows = Q(status=Status.PENDING)
    if claim:
        open_rows |= Q(status=Status.SENDING, claimed_by=claim)
    rows = CampaignDelivery.objects.filter(open_rows, pk=delivery_id)
    campaign_id = rows.values_list("campaign_id", flat=True).first()
    if campaign_id is None or not rows.update(status=Status.SKIPPED):
        return False
    _complete_after_commit(campaign_id)
    return True


def delivery_fail(*, delivery_id: int, error: str) -> bool:
    """The delivery's job ran out of attempts (or hit a permanent error): failed, with the reason."""
    rows = CampaignDelivery.objects.filter(pk=delivery_id, status__in=OPEN)
    campaign_id = rows.values_list("campaign_id", flat=True).first()
    if campaign_id is None or not rows.update(status=Status.FAILED, last_error=error[:2000]):
        return False
    _complete_after_commit(campaign_id)
    return True


# --------------------------------------------------------------------------- subscribers


def subscriber_unsubscribe(*, subscriber_id: int, tenant_id: int) -> bool:
    """Stop all campaign mail to this subscriber; True if this call did it (idempotent)."""
    return bool(
        Subscriber.objects.filter(pk=subscriber_id, tenant_id=tenant_id, unsubscribed_at__isnull=True).update(
            unsubscribed_at=timezone.now()
        )
    )
