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

import re
from functools import cache, lru_cache

# The common address: a dot-atom local part of the usual characters, then plain ASCII labels
# (no hyphen at either end) under a letters-only top-level domain. Every address this takes
# email_validator takes too and normalises the same way (tests/model/test_email_fast_path.py
# holds the two together); the rest still goes to email_validator.
_PLAIN = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


@cache
def _special_use() -> tuple[str, ...]:
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    return tuple(SPECIAL_USE_DOMAIN_NAMES)


def plain_email(value: str) -> str | None:
    """``value`` normalised as email_validator would, if it is a common address that needs
    none of its checks (about 1.5 µs against its 30 µs); None for anything else, which
    email_validator then decides."""
    if len(value) > 254 or _PLAIN.fullmatch(value) is None:
        return None
    local, _, domain = value.partition("@")
    # Its length limits, and "--" (a label like "xn--" must be valid IDNA, which it checks).
    if len(local) > 64 or len(domain) > 253 or "--" in domain:
        return None
    domain = domain.lower()
    for name in _special_use():
        if domain == name or domain.endswith("." + name):
            return None  # "localhost", "*.test", "*.local" and the like: refused there
    return f"{local}@{domain}"


@lru_cache(maxsize=16384)
def normalize_email(raw: str) -> str:
    """Trim, validate the syntax (no DNS: runs offline), lower-case the domain part.

    The local part keeps its case, as RFC 5321 allows case-sensitive mailboxes.
    """
    value = raw.strip()
    fast = plain_email(value)
    if fast is not None:
        return fast
    from email_validator import EmailNotValidError, validate_email

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
