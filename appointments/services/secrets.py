"""A tenant's provider secrets (calendar webhook secret, voice-agent API key):
stored encrypted, shown back only as their last four characters, rotated with
a window in which the old and the new one are both accepted."""

from __future__ import annotations

import logging
import secrets as token_source
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from appointments.models import ProviderSecret
from lib.secretbox import InvalidToken, decrypt, encrypt
from tenants.models import Tenant
from webhooks.providers import Account

log = logging.getLogger(__name__)


def provider_secret_generate() -> str:
    """A fresh calendar webhook secret for a tenant to paste into Cal.com."""
    return token_source.token_urlsafe(32)


@transaction.atomic
def provider_secret_set(
    *, tenant: Tenant, provider: str, secret: str, now: datetime | None = None, window_hours: int | None = None
) -> ProviderSecret:
    """Store ``secret`` as the tenant's current one for ``provider``; the
    previous ones stay valid for ``window_hours`` (PROVIDER_SECRET_ROTATION_HOURS)."""
    secret = secret.strip()
    if len(secret) < 8:
        raise ValueError("a provider secret must be at least 8 characters")
    if provider not in ProviderSecret.Provider.values:
        raise ValueError(f"unknown provider {provider!r}; known: {', '.join(ProviderSecret.Provider.values)}")
    now = now or timezone.now()
    window = timedelta(hours=settings.PROVIDER_SECRET_ROTATION_HOURS if window_hours is None else window_hours)
    # Lock the tenant's secrets of this provider: two rotations at once end with one current secret.
    live = ProviderSecret.objects.select_for_update().filter(tenant=tenant, provider=provider)
    live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now + window)).update(expires_at=now + window)
    return ProviderSecret.objects.create(
        tenant=tenant, provider=provider, ciphertext=encrypt(secret), hint=secret[-4:], created_at=now
    )


def provider_secrets(*, tenant_id: int, provider: str, now: datetime | None = None) -> tuple[str, ...]:
    """The tenant's valid secrets for ``provider``, newest first."""
    now = now or timezone.now()
    rows = (
        ProviderSecret.objects.filter(tenant_id=tenant_id, provider=provider)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-created_at", "-pk")
        .values_list("pk", "ciphertext")
    )
    found = []
    for pk, ciphertext in rows:
        try:
            found.append(decrypt(ciphertext))
        except InvalidToken:
            # SECRET_KEY changed without the old one in SECRET_KEY_FALLBACKS.
            log.error("provider secret %s cannot be decrypted with SECRET_KEY or its fallbacks; set it again", pk)
    return tuple(found)


def provider_account(provider: str, slug: str) -> Account | None:
    """The per-account webhook lookup (webhooks.providers.register_accounts)."""
    tenant_id = Tenant.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if tenant_id is None:
        return None
    return Account(str(tenant_id), provider_secrets(tenant_id=tenant_id, provider=provider))
