"""Normalisation of the identity fields used for matching: email and mobile.

Both return the normalised value or raise ``ValueError`` with a reason a user can act on; the
callers record that reason per field (never drop it silently). Both are cached: a booking
repeats its buyer's address on its tickets, and a customer comes back across bookings.

``email_validator`` and ``phonenumbers`` are imported at the first call, not with the model:
together they are a tenth of a second of start-up (regexes and metadata built at import) that
``ticketbridge run`` would otherwise spend before its first source request, and that
commands which never map a record (``runs``, ``errors``) do not need at all.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=16384)
def normalize_email(raw: str) -> str:
    """Trim, validate the syntax (no DNS: runs offline), lower-case the domain part.

    The local part keeps its case, as RFC 5321 allows case-sensitive mailboxes.
    """
    from email_validator import EmailNotValidError, validate_email

    value = raw.strip()
    if not value:
        raise ValueError("empty email")
    try:
        info = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email {value!r}: {exc}") from None
    return info.normalized


@lru_cache(maxsize=16384)
def normalize_mobile(raw: str, default_region: str | None = None) -> str:
    """Parse a phone number in any common format and return it in E.164 (``+4512345678``).

    ``default_region`` (ISO 3166 alpha-2, e.g. ``DK``) applies to numbers written without a
    country code; it is a per-connection setting because venues store local formats.
    """
    import phonenumbers

    value = raw.strip()
    if not value:
        raise ValueError("empty mobile")
    if value.startswith("00"):
        value = "+" + value[2:]
    try:
        number = phonenumbers.parse(value, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"invalid mobile {raw!r}: {exc}") from None
    # "Possible" (right length for the country) rather than "valid" (inside an allocated
    # range): range tables lag behind operators and reject numbers customers really have.
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"invalid mobile {raw!r}: wrong length for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
