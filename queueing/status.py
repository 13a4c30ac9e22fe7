"""Status providers: how apps above the job runtime (the outbox, webhooks)
show their figures on the dashboard, in /metrics, in alerts and in
queue_health — registered from above (an ``AppConfig.ready``), because
``queueing`` never imports them.

A provider returns a :class:`StatusReport`: named figures (numbers, exported
to Prometheus as ``vito_<provider>_<figure>``) and problems (sentences; any
problem fails ``queue_health`` and raises an alert named ``<provider>``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatusReport:
    title: str
    figures: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    link: str = ""  # where an operator looks next (an admin URL)


_providers: dict[str, Callable[[], StatusReport]] = {}


def register(name: str, provider: Callable[[], StatusReport]) -> None:
    """``name`` is a short identifier (``outbox``, ``webhooks``): a metric prefix and an alert key."""
    _providers[name] = provider


def reports() -> dict[str, StatusReport]:
    """Every provider's report; a provider that raises reports that as its problem."""
    out = {}
    for name, provider in sorted(_providers.items()):
        try:
            out[name] = provider()
        except Exception as exc:
            log.exception("status provider %s failed", name)
            out[name] = StatusReport(title=name, problems=[f"{name} status unavailable: {exc}"])
    return out


@dataclass(frozen=True)
class PanelAction:
    """A button on a status provider's panel (e.g. the outbox's "replay dead
    messages"). ``run`` does the work and returns the sentence shown to the operator."""

    provider: str
    name: str
    label: str
    run: Callable[[], str]
    confirm: str = ""


_actions: dict[tuple[str, str], PanelAction] = {}


def register_action(provider: str, name: str, label: str, run: Callable[[], str], *, confirm: str = "") -> None:
    """Called from an AppConfig.ready above queueing (queueing never imports it)."""
    _actions[(provider, name)] = PanelAction(provider, name, label, run, confirm)


def get_action(provider: str, name: str) -> PanelAction | None:
    return _actions.get((provider, name))


def actions_of(provider: str) -> list[PanelAction]:
    """A provider's buttons, by name."""
    return [a for (owner, _), a in sorted(_actions.items()) if owner == provider]
