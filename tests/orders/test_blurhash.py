from __future__ import annotations

import io
from typing import Any

import blurhash
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from redis import Redis
from rest_framework.authtoken.models import Token

from orders.jobs import generate_product_blurhash
from orders.models import Product
from queueing.models import FailedJob
from tenants.models import TenantMember
from tests.factories import ProductFactory, UserFactory
from tests.queueing.conftest import run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _png(size: tuple[int, int] = (320, 200)) -> bytes:
    image = Image.new("RGB", size)
    for x in range(size[0]):
        for y in range(0, size[1], 20):
            image.putpixel((x, y), (x % 256, 80, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _client_for(product: Product) -> Client:
    user = UserFactory.create()
    TenantMember.objects.create(tenant=product.tenant, user=user)
    return Client(headers={"Authorization": f"Token {Token.objects.create(user=user).key}"})


def _put(client: Client, product_id: int, data: bytes, name: str = "photo.png") -> Any:
    upload = SimpleUploadedFile(name, data, content_type="image/png")
    # Django's test client builds multipart bodies for POST only; encode for PUT by hand.
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    return client.put(f"/api/products/{product_id}/image/", encode_multipart(BOUNDARY, {"image": upload}),
                      content_type=MULTIPART_CONTENT)  # fmt: skip


def test_upload_returns_at_once_and_the_job_computes_the_blurhash(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    client = _client_for(product)
    response = _put(client, product.pk, _png())
    assert response.status_code == 200 and response.json()["blurhash"] is None
    assert run_worker("default", "--burst").returncode == 0
    product.refresh_from_db()
    assert blurhash.is_valid_blurhash(product.blurhash) and len(product.blurhash) == 28  # 4×3 components


def test_a_corrupt_upload_is_a_400_and_changes_nothing(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    client = _client_for(product)
    response = _put(client, product.pk, b"this is not an image", name="x.png")
    assert response.status_code == 400 and "not a readable image" in response.json()["image"][0]
    product.refresh_from_db()
    assert not product.image
    assert _put(client, ProductFactory.create().pk, _png()).status_code == 404  # another tenant's product


def test_an_image_that_fails_in_the_job_goes_to_the_ledger_without_retries(redis_conn: Redis) -> None:
    product = ProductFactory.create()
    product.image.save("broken.png", ContentFile(b"\x89PNG\r\n\x1a\n garbage"), save=True)
    generate_product_blurhash.dispatch(product.tenant_id, product.pk)
    run_worker("default", "--burst", "--tries", "3")
    failed = FailedJob.objects.get()
    assert failed.attempts == 1
    assert "cannot be decoded" in failed.message and "upload it again" in failed.message
