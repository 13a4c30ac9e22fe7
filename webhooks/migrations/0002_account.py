from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="account",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        # The new key first, then the old one dropped: a provider's retry is
        # recognised throughout the migration.
        migrations.AddConstraint(
            model_name="webhookevent",
            constraint=models.UniqueConstraint(
                fields=("provider", "account", "event_id"), name="webhook_provider_account_event_unique"
            ),
        ),
        migrations.RemoveConstraint(model_name="webhookevent", name="webhook_provider_event_unique"),
    ]
