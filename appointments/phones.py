"""Phone numbers in E.164 (``+4930123456``), parsed by Google's libphonenumber
(the ``phonenumbers`` port): one customer per number however it was written."""

from __future__ import annotations

import phonenumbers
from django.conf import settings

DEFAULT_REGION = "DE"  # seed 002's market; PHONE_DEFAULT_REGION overrides it


class InvalidPhone(ValueError):
    pass


def normalise_phone(raw: str, *, region: str | None = None) -> str:
    """``raw`` as E.164; a number without a country code is read in ``region``
    (PHONE_DEFAULT_REGION). InvalidPhone when it is not a possible number."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("no phone number given")
    try:
        number = phonenumbers.parse(text, region or getattr(settings, "PHONE_DEFAULT_REGION", DEFAULT_REGION))
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{text!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(f"{text!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
