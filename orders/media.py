"""Product images: validate at upload, compute the BlurHash later (GenerateProductBlurhash)."""

from __future__ import annotations

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from orders.models import Product
from queueing.definitions import PermanentError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # refuse decompression bombs before they cost memory


class InvalidImage(ValueError):
    pass


def _check(upload: UploadedFile) -> None:
    if upload.size is not None and upload.size > MAX_IMAGE_BYTES:
        raise InvalidImage(f"image is over {MAX_IMAGE_BYTES // 1_048_576} MB")
    try:
        with Image.open(upload) as image:
            if image.width * image.height > MAX_PIXELS:
                raise InvalidImage(f"image is {image.width}×{image.height}; at most {MAX_PIXELS:,} pixels")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidImage(f"not a readable image ({type(exc).__name__}); upload a PNG, JPEG, GIF or WebP") from None
    finally:
        upload.seek(0)


def product_set_image(*, product: Product, upload: UploadedFile) -> Product:
    """Store the image and return at once; the BlurHash is computed by a job after commit."""
    from orders.jobs import generate_product_blurhash

    _check(upload)
    with transaction.atomic():
        product.image.save(upload.name or "image", upload, save=False)
        product.blurhash = ""
        product.save(update_fields=["image", "blurhash"])
        generate_product_blurhash.dispatch(product.tenant_id, product.pk)
    return product


def product_compute_blurhash(*, tenant_id: int, product_id: int) -> str | None:
    """BlurHash of a downscaled copy. A bad stored image is a permanent failure (no retries)."""
    import blurhash

    product = Product.objects.filter(pk=product_id, tenant_id=tenant_id).first()
    if product is None or not product.image:
        return None  # deleted meanwhile, or image removed: nothing to do
    try:
        with product.image.open("rb") as fh, Image.open(fh) as image:
            image.draft("RGB", (64, 64))  # JPEG: decode at reduced size, far less memory
            small = image.convert("RGB")
            small.thumbnail((64, 64))
            value = str(blurhash.encode(small, 4, 3))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PermanentError(
            f"product {product_id}: stored image {product.image.name!r} cannot be decoded ({exc}); upload it again"
        ) from exc
    Product.objects.filter(pk=product_id, image=product.image.name).update(blurhash=value)
    return value
