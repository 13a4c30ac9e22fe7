"""What the nightly purge may delete: kinds of record, registered from above.

Each app declares its own kinds in ``AppConfig.ready()`` (``register_kind``);
``tenants`` declares how a tenant's plan overrides the days and how a slug is
found (``register_tenancy``). ``queueing`` imports no app: it only knows the
models it is handed. docs/retention.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Model, Q, QuerySet


class RetentionError(ValueError):
    """An unknown kind or tenant, or a policy that makes no sense: nothing was changed."""


@dataclass(frozen=True)
class Kind:
    """One kind of record and the rule for when it may go.

    ``still_needed`` says which old rows must stay anyway (a webhook event not
    yet processed, an export whose link still works); it is given the run's
    clock. Rows locked by someone else at purge time (a failed job being
    retried right now) are skipped as well, whatever the rule says.
    """

    name: str  # what operators type: ``purge --only interactions``
    model: type[Model]
    time_field: str  # the age of a row
    default_days: int
    description: str
    tenant_field: str | None = None  # the tenant id column (``tenant_id``); None: not tenant data
    still_needed: Callable[[datetime], Q] | None = None
    file_fields: tuple[str, ...] = ()  # paths in default storage, deleted after their row
    file_prefix: str | None = None  # where its files live, swept for orphans
    after_delete: Callable[[list[int]], None] | None = None  # rows that hang off the deleted ones


@dataclass(frozen=True)
class Tenancy:
    """How tenants are seen by the purge (registered by ``tenants``)."""

    # Slug → tenant id; raises RetentionError for an unknown slug.
    resolve: Callable[[str], int]
    # Kind name → [(days, tenant ids whose plan keeps that kind that long)].
    overrides: Callable[[str], Sequence[tuple[int, QuerySet[Model]]]]


@dataclass
class _Registry:
    kinds: dict[str, Kind] = field(default_factory=dict)
    tenancy: Tenancy | None = None


_registry = _Registry()


def register_kind(kind: Kind) -> None:
    if kind.name in _registry.kinds and _registry.kinds[kind.name] != kind:
        raise RetentionError(f"retention kind {kind.name!r} registered twice")
    _registry.kinds[kind.name] = kind


def register_tenancy(tenancy: Tenancy) -> None:
    _registry.tenancy = tenancy


def kinds() -> list[Kind]:
    return list(_registry.kinds.values())


def kind_named(name: str) -> Kind:
    try:
        return _registry.kinds[name]
    except KeyError:
        known = ", ".join(sorted(_registry.kinds))
        raise RetentionError(f"unknown kind {name!r}; the kinds are: {known}") from None


def tenancy() -> Tenancy | None:
    return _registry.tenancy


def days_for(kind: Kind) -> int:
    """The deployment's days for a kind: ``RETENTION_DAYS`` or the kind's default."""
    configured: dict[str, int] = settings.RETENTION_DAYS
    return int(configured.get(kind.name, kind.default_days))
