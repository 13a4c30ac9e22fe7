from typing import Any

from django.db import migrations, models


def name_stripe_refunds(apps: Any, schema_editor: Any) -> None:
    """Refunds recorded before this field: a Stripe refund's PaymentIntent is in
    its stored ``charge.refunded`` event. (Standard Webhooks refunds name no
    payment and stay blank, matched when processed.)"""
    Payment = apps.get_model("orders", "Payment")
    WebhookEvent = apps.get_model("orders", "WebhookEvent")
    for refund in Payment.objects.filter(provider="stripe", kind="refunded", refunded_reference="").iterator():
        events = WebhookEvent.objects.filter(provider="stripe", type="charge.refunded",
                                             payload__data__object__id=refund.reference)  # fmt: skip
        for payload in events.values_list("payload", flat=True)[:1]:
            intent = payload["data"]["object"].get("payment_intent")
            intent = intent.get("id") if isinstance(intent, dict) else intent
            if isinstance(intent, str) and intent:
                Payment.objects.filter(pk=refund.pk).update(refunded_reference=intent[:255])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_salesexport"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="refunded_reference",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.RunPython(name_stripe_refunds, migrations.RunPython.noop),
    ]
