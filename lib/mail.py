"""Every e-mail the platform sends: a text and an HTML part rendered from
``templates/emails/<name>.txt`` and ``.html``, sent through Django's e-mail
framework (EMAIL_URL). A leaf module (Django only), so any app may use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def templated_message(
    name: str,
    context: dict[str, Any],
    *,
    subject: str,
    to: Sequence[str],
    from_email: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"emails/{name}.txt", context),
        from_email=from_email,
        to=list(to),
        headers=headers,
    )
    message.attach_alternative(render_to_string(f"emails/{name}.html", context), "text/html")
    return message


def send_templated(name: str, context: dict[str, Any], *, subject: str, to: Sequence[str]) -> None:
    templated_message(name, context, subject=subject, to=to).send()
