"""The queue dashboard at ``/admin/queues/`` (Horizon's console): live queue,
worker and failure figures, charts from the metric snapshots, and the
operator actions (retry, forget, flush, pause, continue, unlock), each a
CSRF-protected POST written to the audit log."""
