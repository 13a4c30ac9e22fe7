"""Campaign jobs: the fan-out, and SendCampaignEmail (one per recipient).

SendCampaignEmail is limited per tenant by the named rate limit
``campaign-email`` (``CAMPAIGN_RATE_PER_MINUTE``): a job over the limit is put
back, not failed, and does not use an attempt.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rq import get_current_job

from marketing.emails import describe_error
from marketing.services import (
    FanOut,
    campaign_fan_out,
    delivery_fail,
    delivery_precheck,
    delivery_send,
)
from queueing.definitions import Exponential, job
from queueing.middleware import JobContext, Limit, Next, RateLimited, Release

log = logging.getLogger(__name__)

RATE_LIMIT = "campaign-email"


def campaign_rate(ctx: JobContext) -> Limit:
    # Read per call, not at import, so the limit always follows the settings.
    return Limit.per_minute(settings.CAMPAIGN_RATE_PER_MINUTE, by=ctx.args[0])  # args[0] is the tenant id


def only_open_deliveries(ctx: JobContext, call_next: Next) -> Any:
    """Outside the rate limit: a duplicate job (its delivery already settled) or an
    unsubscribed recipient sends nothing, so it must not use one of the tenant's slots."""
    tenant_id, delivery_id = ctx.args[0], ctx.args[1]
    verdict = delivery_precheck(tenant_id=tenant_id, delivery_id=delivery_id)
    return call_next() if verdict == "send" else verdict


@dataclass(frozen=True)
class SpreadHeldBack:
    """``RateLimited``, with the jobs it holds back spread over the coming windows.

    RateLimited puts every held-back job back for the start of the next window.
    For 100,000 recipients at 600 a minute, that would be the whole backlog
    claimed, refused and put back every minute for about three hours. Here the
    k-th job held back in a window waits for window ``1 + k // limit`` (at a
    random moment inside it): each window receives about as many jobs as it
    allows, and a job is put back about once. RateLimited still enforces the limit.
    """

    inner: RateLimited

    def __call__(self, ctx: JobContext, call_next: Next) -> Any:
        entered = False

        def proceed() -> Any:
            nonlocal entered
            entered = True
            return call_next()

        try:
            return self.inner(ctx, proceed)
        except Release as release:
            if entered:  # not ours: something inside the job said "not now"
                raise
            limit = campaign_rate(ctx)
            now = time.time()
            window = int(now // limit.per_seconds)
            key = f"vito:marketing:held:{self.inner.name}:{limit.by}:{window}"
            with ctx.connection.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, limit.per_seconds + 1)
                held = int(pipe.execute()[0])
            ahead = (held - 1) // max(1, limit.max_attempts)
            start = (window + 1 + ahead) * limit.per_seconds
            offset = random.uniform(0, limit.per_seconds * 0.9)  # noqa: S311 - spreading, not security
            raise Release(start - now + offset, f"{release.reason}, window +{ahead + 1}") from None


def _failed(exc: BaseException, tenant_id: int, delivery_id: int, *_: object, **__: object) -> None:
    # In the ledger row's transaction: the delivery is failed exactly once.
    delivery_fail(delivery_id=delivery_id, error=describe_error(exc))


@job(
    queue="notifications",
    tries=3,
    # A refusing or unreachable relay usually recovers within minutes.
    backoff=Exponential(base=60, cap=900),
    timeout=60,
    middleware=[only_open_deliveries, SpreadHeldBack(RateLimited(RATE_LIMIT))],
    on_failure=_failed,
)
def send_campaign_email(tenant_id: int, delivery_id: int) -> str:
    """SendCampaignEmail: one recipient of one campaign."""
    current = get_current_job()
    # The claim is the job id, so this job's own retries can take it back;
    # called inline (no job), a one-off claim.
    claim = current.id if current is not None else f"inline-{time.time_ns()}"
    return delivery_send(tenant_id=tenant_id, delivery_id=delivery_id, claim=claim)


@job(
    queue="default",
    tries=5,
    backoff=Exponential(base=10, cap=300),
    timeout=1800,
    unique_for=1800,
    unique_key=lambda tenant_id, campaign_id: str(campaign_id),
)
def fan_out_campaign(tenant_id: int, campaign_id: int) -> dict[str, int]:
    """Create a sending campaign's deliveries and queue their jobs; retried whole
    (it is safe to run again: deliveries are unique, sends are claimed)."""
    result: FanOut = campaign_fan_out(campaign_id=campaign_id, tenant_id=tenant_id)
    return {"created": result.created, "dispatched": result.dispatched}
