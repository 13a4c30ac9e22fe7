from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built concurrently: the table is large, and a plain CREATE INDEX would
    # hold back the tracking drain's inserts for as long as the build takes.
    atomic = False

    dependencies = [
        ("tenants", "0006_link_scan_cursor"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="interaction",
            index=models.Index(
                condition=models.Q(("kind", "redirect")), fields=["tenant", "id"], name="interaction_redirect_idx"
            ),
        ),
    ]
