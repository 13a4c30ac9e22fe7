"""Inbound webhooks: the transport (size limit, strict JSON, signatures), one
module per provider with its dispatch table, intake (the event and its outbox
message in one statement) and processing.

It imports no domain app: the handlers that act on an event type are
registered from above (``webhooks.providers.register_handler`` in the owning
app's ``AppConfig.ready()``). docs/webhooks.md."""
