"""Demo data: a few tenants on different plans with catalogs, orders,
appointments, subscribers and a draft campaign.

Idempotent: every row has a deterministic identity (slug, SKU, order number,
e-mail, appointment index) and only missing rows are inserted, so running it
again changes nothing and running it with larger numbers tops up. Large
volumes go through ``bulk_create`` in batches: a million orders is a few
thousand statements, not a million round trips.

Seeded orders are historical: they are inserted directly rather than through
``order_place``, and product stock is the stock left *after* them. Releasing a
seeded stale order therefore adds its quantity back, as it would in life.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from appointments.models import Appointment, Customer, Service
from marketing.models import Campaign, Subscriber
from orders.models import Order, OrderItem, Product
from tenants.models import BusinessProfile, Plan, Tenant, TenantMember

BATCH = 5_000

PLANS = [
    # slug, name, products, orders/month, recipients/month, storage MB
    ("starter", "Starter", 50, 500, 1_000, 512),
    ("growth", "Growth", 500, 10_000, 25_000, 5_120),
    ("scale", "Scale", 10_000, 1_000_000, 1_000_000, 102_400),
]

NAMED_TENANTS = [
    ("acme-coffee", "Acme Coffee Roasters", "starter", "coffee"),
    ("bella-salon", "Bella Hair Salon", "growth", "beauty"),
    ("city-books", "City Books", "scale", "books"),
]

CATALOG = {
    "coffee": ["Espresso beans", "Filter roast", "Decaf blend", "Cold brew kit", "Ceramic mug", "Pour-over cone"],
    "beauty": ["Argan oil shampoo", "Hair mask", "Styling gel", "Gift card", "Wide-tooth comb", "Heat protector"],
    "books": ["Paperback novel", "Cookbook", "Travel guide", "Children's atlas", "Bookmark set", "Reading lamp"],
}
SERVICES = ["Consultation", "Haircut", "Tasting session", "Fitting", "Workshop"]
CURRENCY = "USD"


@dataclass
class SeedCounts:
    tenants: int = 0
    products: int = 0
    orders: int = 0
    appointments: int = 0
    subscribers: int = 0
    campaigns: int = 0


@dataclass(frozen=True)
class SeedOptions:
    tenants: int = len(NAMED_TENANTS)
    products: int = 6
    orders: int = 24
    appointments: int = 10
    subscribers: int = 25


Progress = Callable[[str], None]


def seed_demo(*, options: SeedOptions, progress: Progress = lambda _msg: None) -> SeedCounts:
    """Create whatever demo rows are missing; return how many of each were added."""
    counts = SeedCounts()
    plans = _seed_plans()
    for tenant, category, created in _seed_tenants(options.tenants, plans):
        counts.tenants += int(created)
        with transaction.atomic():
            products = _seed_products(tenant, category, options.products, counts)
            _seed_orders(tenant, products, options.orders, counts, progress)
            _seed_appointments(tenant, options.appointments, counts)
            _seed_subscribers(tenant, options.subscribers, counts)
            _seed_campaign(tenant, counts)
        progress(f"{tenant.slug}: ready")
    return counts


def _seed_plans() -> dict[str, Plan]:
    plans = {}
    for slug, name, products, orders, recipients, storage in PLANS:
        plans[slug], _ = Plan.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "max_products": products,
                "max_orders_per_month": orders,
                "max_campaign_recipients_per_month": recipients,
                "max_storage_mb": storage,
            },
        )
    return plans


def _tenant_specs(count: int) -> Iterator[tuple[str, str, str, str]]:
    yield from NAMED_TENANTS[:count]
    categories = list(CATALOG)
    plan_slugs = [p[0] for p in PLANS]
    for i in range(len(NAMED_TENANTS), count):
        yield (f"demo-{i:05d}", f"Demo Shop {i}", plan_slugs[i % len(plan_slugs)], categories[i % len(categories)])


def _seed_tenants(count: int, plans: dict[str, Plan]) -> Iterator[tuple[Tenant, str, bool]]:
    User = get_user_model()
    now = timezone.now()
    for slug, name, plan_slug, category in _tenant_specs(count):
        tenant, created = Tenant.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "plan": plans[plan_slug],
                "owner_email": f"owner@{slug}.example.com",
                "category": category,
                "status": Tenant.Status.APPROVED,
                "approved_at": now,
            },
        )
        if created:
            owner, _ = User.objects.get_or_create(
                username=f"owner-{slug}", defaults={"email": tenant.owner_email, "password": "!"}
            )
            TenantMember.objects.get_or_create(tenant=tenant, user=owner, defaults={"role": TenantMember.Role.OWNER})
            BusinessProfile.objects.get_or_create(tenant=tenant)
        yield tenant, category, created


def _seed_products(tenant: Tenant, category: str, count: int, counts: SeedCounts) -> list[Product]:
    names = CATALOG[category]
    rows = [
        Product(
            tenant=tenant,
            sku=f"{category[:3].upper()}-{i:04d}",
            name=names[i % len(names)] + ("" if i < len(names) else f" #{i}"),
            description=f"{names[i % len(names)]} from {tenant.name}.",
            price=Decimal(5 + (i * 7) % 60) + Decimal("0.99"),
            stock_quantity=100 + (i * 13) % 400,
        )
        for i in range(count)
    ]
    existing = set(Product.objects.filter(tenant=tenant).values_list("sku", flat=True))
    missing = [p for p in rows if p.sku not in existing]
    Product.objects.bulk_create(missing, batch_size=BATCH)
    counts.products += len(missing)
    return list(Product.objects.filter(tenant=tenant, sku__in=[p.sku for p in rows]).order_by("id"))


def _order_shape(i: int, now: datetime, rng: random.Random) -> tuple[str, datetime]:
    """Deterministic status mix; one in ten orders is a stale PENDING one."""
    slot = i % 10
    if slot == 8:  # stale: PENDING for 31 minutes to 3 hours
        return Order.Status.PENDING, now - timedelta(minutes=31 + rng.randrange(150))
    if slot == 9:  # fresh: PENDING for under 10 minutes, not to be released
        return Order.Status.PENDING, now - timedelta(seconds=rng.randrange(600))
    status = {6: Order.Status.FULFILLED, 7: Order.Status.CANCELLED}.get(slot, Order.Status.PAID)
    return status, now - timedelta(days=1 + rng.randrange(89), seconds=rng.randrange(86_400))


def _seed_orders(tenant: Tenant, products: list[Product], count: int, counts: SeedCounts, progress: Progress) -> None:
    if not products:
        return
    prefix = f"DEMO-{tenant.pk}-"
    start = Order.objects.filter(tenant=tenant, number__startswith=prefix).count()
    now = timezone.now()
    for batch_start in range(start, count, BATCH):
        batch_end = min(count, batch_start + BATCH)
        orders, lines = [], []
        for i in range(batch_start, batch_end):
            rng = random.Random(f"{tenant.pk}:{i}")
            status, created_at = _order_shape(i, now, rng)
            picked = rng.sample(products, k=min(len(products), 1 + rng.randrange(3)))
            quantities = [1 + rng.randrange(3) for _ in picked]
            orders.append(
                Order(
                    tenant=tenant,
                    number=f"{prefix}{i:07d}",
                    status=status,
                    customer_email=f"customer{i % 997}@example.com",
                    total=sum((p.price * q for p, q in zip(picked, quantities, strict=True)), Decimal("0.00")),
                    currency=CURRENCY,
                    created_at=created_at,
                    paid_at=created_at + timedelta(minutes=2) if status in ("PAID", "FULFILLED") else None,
                    cancelled_at=created_at + timedelta(hours=1) if status == "CANCELLED" else None,
                    cancel_reason="Customer changed their mind" if status == "CANCELLED" else "",
                )
            )
            lines.append(list(zip(picked, quantities, strict=True)))
        # PostgreSQL returns the new ids, so items can point at their orders.
        Order.objects.bulk_create(orders)
        OrderItem.objects.bulk_create(
            (
                OrderItem(order=order, product=product, quantity=quantity, unit_price=product.price)
                for order, order_lines in zip(orders, lines, strict=True)
                for product, quantity in order_lines
            ),
            batch_size=BATCH,
        )
        counts.orders += len(orders)
        if count - start > BATCH:
            progress(f"{tenant.slug}: {batch_end:,}/{count:,} orders")


def _seed_appointments(tenant: Tenant, count: int, counts: SeedCounts) -> None:
    existing = Appointment.objects.filter(tenant=tenant).count()
    if existing >= count:
        return
    now = timezone.now().replace(second=0, microsecond=0)
    services = [
        Service.objects.get_or_create(tenant=tenant, name=name, defaults={"duration_minutes": 30})[0]
        for name in SERVICES
    ]
    rows = []
    for i in range(existing, count):
        rng = random.Random(f"appt:{tenant.pk}:{i}")
        if i % 5 == 0:  # due for a reminder: starts 23–24 h from now
            starts = now + timedelta(hours=23, minutes=5 + rng.randrange(50))
        else:
            starts = now + timedelta(days=2 + rng.randrange(28), hours=rng.randrange(9))
        customer, _ = Customer.objects.get_or_create(
            tenant=tenant, email=f"client{i}@example.com", defaults={"name": f"Customer {i}"}
        )
        service = services[i % len(services)]
        rows.append(
            Appointment(
                tenant=tenant,
                customer=customer,
                customer_name=customer.name,
                customer_email=customer.email,
                service=service,
                service_name=service.name,
                starts_at=starts,
                ends_at=starts + timedelta(minutes=30 + 15 * (i % 4)),
                source=Appointment.Source.ADMIN,
            )
        )
    Appointment.objects.bulk_create(rows, batch_size=BATCH)
    counts.appointments += len(rows)


def _seed_subscribers(tenant: Tenant, count: int, counts: SeedCounts) -> None:
    existing = set(Subscriber.objects.filter(tenant=tenant).values_list("email", flat=True))
    rows = [
        Subscriber(tenant=tenant, email=email)
        for email in (f"subscriber{i}@example.com" for i in range(count))
        if email not in existing
    ]
    Subscriber.objects.bulk_create(rows, batch_size=BATCH)
    counts.subscribers += len(rows)


def _seed_campaign(tenant: Tenant, counts: SeedCounts) -> None:
    _, created = Campaign.objects.get_or_create(
        tenant=tenant,
        subject=f"News from {tenant.name}",
        defaults={"body": f"Hello!\n\nHere is what is new at {tenant.name} this month.\n"},
    )
    counts.campaigns += int(created)
