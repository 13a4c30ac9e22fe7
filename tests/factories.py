"""factory_boy factories shared by every test module."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from orders.models import Order, Product
from tenants.models import Plan, Tenant


class PlanFactory(factory.django.DjangoModelFactory[Plan]):
    class Meta:
        model = Plan
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"plan-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())
    max_products = 100
    max_orders_per_month = 1000
    max_campaign_recipients_per_month = 1000
    max_storage_mb = 1024


class TenantFactory(factory.django.DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    plan = factory.SubFactory(PlanFactory)
    owner_email = factory.LazyAttribute(lambda o: f"owner@{o.slug}.example.com")
    status = Tenant.Status.APPROVED


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product

    tenant = factory.SubFactory(TenantFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")
    stock_quantity = 10


class OrderFactory(factory.django.DjangoModelFactory[Order]):
    class Meta:
        model = Order

    tenant = factory.SubFactory(TenantFactory)
    number = factory.Sequence(lambda n: f"T-{n:06d}")
    customer_email = "customer@example.com"
    total = Decimal("0.00")
    created_at = factory.LazyFunction(timezone.now)


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("correct horse battery staple")
