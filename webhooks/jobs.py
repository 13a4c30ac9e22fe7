"""This app's jobs (found by queueing's autodiscovery): the outbound deliveries."""

from webhooks.outbound.jobs import send_deliveries, sweep_deliveries, wake

__all__ = ["send_deliveries", "sweep_deliveries", "wake"]
