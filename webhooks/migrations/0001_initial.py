from typing import Any

from django.db import migrations, models


def _move_content_type(apps: Any, source: str, target: str) -> None:
    """Keep the model's content type (and so the permissions granted on it and
    the admin log) when the model changes app, instead of starting a new one.
    A row already under ``target`` (made by code that ran before this
    migration, or left by an earlier rollback) holds no grants of its own: the
    moved one replaces it."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    moving = ContentType.objects.filter(app_label=source, model="webhookevent")
    if moving.exists():
        ContentType.objects.filter(app_label=target, model="webhookevent").delete()
        moving.update(app_label=target)


def adopt_content_type(apps: Any, schema_editor: Any) -> None:
    _move_content_type(apps, "orders", "webhooks")


def return_content_type(apps: Any, schema_editor: Any) -> None:
    _move_content_type(apps, "webhooks", "orders")


class Migration(migrations.Migration):
    """WebhookEvent moves here from ``orders``: its table, constraint and index
    already exist (orders 0002), so this changes Django's state only. Hence the
    dependency on ``orders``, the one place this app depends on a domain app:
    its table's history is there."""

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0004_payment_refunded_reference"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("provider", models.CharField(max_length=32)),
                        ("event_id", models.CharField(max_length=255)),
                        ("type", models.CharField(max_length=100)),
                        ("payload", models.JSONField()),
                        ("received_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("received", "Received"),
                                    ("processed", "Processed"),
                                    ("ignored", "Ignored (unknown type)"),
                                    ("failed", "Failed"),
                                ],
                                default="received",
                                max_length=16,
                            ),
                        ),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("last_error", models.TextField(blank=True)),
                    ],
                    options={
                        "db_table": "orders_webhookevent",
                        "indexes": [models.Index(fields=["status", "received_at"], name="webhook_status_idx")],
                        "constraints": [
                            models.UniqueConstraint(fields=("provider", "event_id"), name="webhook_provider_event_unique")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(adopt_content_type, return_content_type),
    ]
