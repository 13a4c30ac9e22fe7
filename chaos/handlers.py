"""Outbox handlers with a countable effect.

``chaos.tally`` adds 1 to the stock of the product named in its payload; a
scenario gives every message its own product, so after the run a stock of 0
is a lost effect and a stock above 1 an effect done twice.
"""

from __future__ import annotations

import time

from django.db.models import F

from orders.models import Product
from outbox.routes import Event


def tally(event: Event) -> None:
    time.sleep(float(event.payload.get("sleep", 0)))  # long enough for a kill to land mid-job
    Product.objects.filter(pk=event.payload["product_id"]).update(stock_quantity=F("stock_quantity") + 1)
