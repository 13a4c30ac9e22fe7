from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations


class Migration(migrations.Migration):
    """Bookings: the reminder-only appointment grows customers, staff,
    services, history, calls, notifications and provider secrets. Statuses
    become seed 002's: scheduled and confirmed are both "booked"."""

    dependencies = [("appointments", "0001_initial"), ("tenants", "0005_erasure_request")]

    operations = [
        # The exclusion constraint compares staff ids with "=" in a GiST index.
        BtreeGistExtension(),
        migrations.RenameField(model_name="appointment", old_name="service", new_name="service_name"),
        migrations.RunSQL(
            "UPDATE appointments_appointment SET status = 'booked' WHERE status IN ('scheduled', 'confirmed')",
            "UPDATE appointments_appointment SET status = 'scheduled' WHERE status = 'booked'",
        ),
    ]
