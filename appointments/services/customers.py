"""Customers: found again by phone (E.164, unique per tenant) or e-mail,
created when new, never duplicated by two concurrent callers."""

from __future__ import annotations

from django.db import transaction

from appointments.models import Customer
from appointments.phones import InvalidPhone, normalise_phone


@transaction.atomic
def customer_find_or_create(*, tenant_id: int, name: str = "", email: str = "", phone: str = "") -> Customer:
    """The tenant's customer with this phone number (else this e-mail), created
    if there is none; blanks in a found row are filled from what we now know.
    An unparseable phone number is dropped, not an error: the booking matters more."""
    try:
        e164 = normalise_phone(phone) if phone else ""
    except InvalidPhone:
        e164 = ""
    email = email.strip().lower()
    customer: Customer | None
    if e164:
        # get_or_create retries the read when a concurrent insert wins the unique (tenant, phone).
        customer, created = Customer.objects.get_or_create(
            tenant_id=tenant_id, phone=e164, defaults={"name": name[:200], "email": email}
        )
        if created:
            return customer
    else:
        customer = Customer.objects.filter(tenant_id=tenant_id, email=email).order_by("pk").first() if email else None
        if customer is None:
            return Customer.objects.create(tenant_id=tenant_id, name=name[:200], email=email)
    changed = []
    for field, value in (("name", name[:200]), ("email", email)):
        if value and not getattr(customer, field):
            setattr(customer, field, value)
            changed.append(field)
    if changed:
        customer.save(update_fields=changed)
    return customer
