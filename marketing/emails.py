"""The campaign e-mail (text and HTML from templates/emails/campaign.*) and its
signed unsubscribe link.

The link is Django's signing of ``<subscriber id>.<tenant id>`` with its own
salt, so no other signed value of the project (a download link, a session)
can pass for it. It never expires: an unsubscribe link has to work for as
long as the e-mail sits in someone's mailbox, and all it can do is stop mail
to that one address. Rotating ``SECRET_KEY`` would break the links already
sent; keep the old key in ``SECRET_KEY_FALLBACKS`` for a while.
"""

from __future__ import annotations

import smtplib
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from marketing.models import CampaignDelivery

UNSUBSCRIBE_SALT = "vito.marketing.unsubscribe"


def unsubscribe_token(*, subscriber_id: int, tenant_id: int) -> str:
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(f"{subscriber_id}.{tenant_id}")


def unsubscribe_url(*, subscriber_id: int, tenant_id: int) -> str:
    path = reverse("unsubscribe", args=[unsubscribe_token(subscriber_id=subscriber_id, tenant_id=tenant_id)])
    return str(settings.SITE_URL).rstrip("/") + path


def read_unsubscribe_token(token: str) -> tuple[int, int]:
    """``(subscriber id, tenant id)``, or ``signing.BadSignature`` for a tampered or truncated link."""
    value = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
    subscriber, _, tenant = value.partition(".")
    if not (subscriber.isdigit() and tenant.isdigit()):
        raise signing.BadSignature("malformed unsubscribe token")
    return int(subscriber), int(tenant)


def _sender(tenant_name: str) -> str:
    # The platform's address, shown under the tenant's name: recipients know
    # the business, not the platform.
    _name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((tenant_name, address)) if address else settings.DEFAULT_FROM_EMAIL


def campaign_message(delivery: CampaignDelivery) -> EmailMultiAlternatives:
    """One recipient's e-mail; ``delivery`` comes with campaign, tenant and subscriber loaded."""
    campaign, subscriber = delivery.campaign, delivery.subscriber
    tenant = campaign.tenant
    link = unsubscribe_url(subscriber_id=subscriber.pk, tenant_id=tenant.pk)
    context = {"campaign": campaign, "tenant": tenant, "subscriber": subscriber, "unsubscribe_url": link}
    message = EmailMultiAlternatives(
        subject=campaign.subject,
        body=render_to_string("emails/campaign.txt", context),
        from_email=_sender(tenant.name),
        to=[subscriber.email],
        headers={
            # RFC 2369 link, and RFC 8058 one-click: mail clients POST to it
            # ("List-Unsubscribe=One-Click") without showing our page.
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(render_to_string("emails/campaign.html", context), "text/html")
    return message


def describe_error(exc: BaseException) -> str:
    """A send failure as one line for ``last_error``: ``SMTP 550 mailbox unavailable``."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"SMTP {exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{address}: SMTP {code} {reply.decode(errors='replace')}"
            for address, (code, reply) in exc.recipients.items()
        )
    return f"{type(exc).__name__}: {exc}"
