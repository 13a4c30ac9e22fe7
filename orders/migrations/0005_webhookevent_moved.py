from django.db import migrations


class Migration(migrations.Migration):
    """WebhookEvent now belongs to the ``webhooks`` app (same table,
    ``orders_webhookevent``): drop it from this app's state, not the database."""

    dependencies = [
        ("orders", "0004_payment_refunded_reference"),
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WebhookEvent")],
            database_operations=[],
        ),
    ]
