"""Outbound webhooks: tenants subscribe their URLs to events and receive
signed (Standard Webhooks), retried (Svix's schedule), logged deliveries.

    models     endpoints, their secrets, messages, deliveries, attempts
    catalog    the event types domain apps register (name, version, docs)
    fanout     the outbox handler: one message per event, one delivery per endpoint
    sending    claims, the HTTP attempt, the retry schedule, disabling
    addresses  which hosts a delivery may reach (no private networks, no rebinding)
    client     the HTTP client: pinned address, timeouts, no redirects, capped body

docs/outbound-webhooks.md is the manual.
"""
