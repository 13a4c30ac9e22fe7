"""How fast `seed_demo` fills the orders table, against PostgreSQL's own floor.

Baseline, same run, same server: one server-side ``INSERT … SELECT
generate_series`` of the same number of order rows (and one item per row) —
no Python, no network; nothing we could write is faster. The ratio says how far
seeding is from that floor. BENCH_ORDERS sets the size (default 200,000).
"""

from __future__ import annotations

import os

from bench.harness import table, timed


def run() -> None:
    from django.db import connection

    from config.demo import SeedOptions, seed_demo
    from orders.models import Order, OrderItem

    n = int(os.environ.get("BENCH_ORDERS", "200000"))
    # Rates come from the rows this run made, whatever the database held before.
    orders_before, items_before = Order.objects.count(), OrderItem.objects.count()
    with timed() as ours:
        seed_demo(options=SeedOptions(tenants=1, products=6, orders=n, appointments=0, subscribers=0))
    seeded_orders = Order.objects.count() - orders_before
    seeded_items = OrderItem.objects.count() - items_before
    assert seeded_orders == n, f"seed_demo made {seeded_orders:,} orders, asked for {n:,}"

    with connection.cursor() as cur:
        cur.execute("SELECT id FROM tenants_tenant LIMIT 1")
        tenant_id = cur.fetchone()[0]
        cur.execute("SELECT id FROM orders_product LIMIT 1")
        product_id = cur.fetchone()[0]
        with timed() as floor:
            cur.execute(
                """
                WITH o AS (
                    INSERT INTO orders_order (tenant_id, number, status, customer_email, total, currency,
                                              created_at, cancel_reason)
                    SELECT %s, 'FLOOR-' || g, 'PAID', 'c' || (g %% 997) || '@example.com', 10.99, 'USD',
                           now() - (g || ' seconds')::interval, ''
                    FROM generate_series(1, %s) AS g
                    RETURNING id
                )
                INSERT INTO orders_orderitem (order_id, product_id, quantity, unit_price)
                SELECT id, %s, 1, 10.99 FROM o
                """,
                [tenant_id, n, product_id],
            )
    rate_ours, rate_floor = seeded_orders / ours(), n / floor()
    rows: list[tuple[str, float, float, str]] = [
        ("seed_demo (bulk_create)", ours(), rate_ours, f"{rate_floor / rate_ours:.1f}x slower"),
        ("INSERT…SELECT (floor)", floor(), rate_floor, "1.0x"),
    ]
    table(
        f"seed_demo: {n:,} orders ({seeded_items:,} items) vs PostgreSQL INSERT…SELECT floor",
        ["path", "seconds", "orders/s", "ratio to floor", "1M orders would take"],
        [
            [name, f"{secs:.1f}", f"{rate:,.0f}", ratio, f"{1_000_000 / rate / 60:.1f} min"]
            for name, secs, rate, ratio in rows
        ],
    )
