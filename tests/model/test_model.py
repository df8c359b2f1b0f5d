from __future__ import annotations

import pytest
from pydantic import ValidationError

from ticketbridge.model import Contact, Money, normalize_email, normalize_mobile, stable_hash


def test_money_is_integer_minor_units_of_an_iso_currency() -> None:
    assert Money.from_decimal("12.345", "gbp") == Money(minor=1234, currency="GBP")
    assert Money.from_decimal(100, "JPY").minor == 100
    assert Money.from_decimal("1.5", "KWD").minor == 1500
    assert (Money(minor=150, currency="EUR") + Money(minor=50, currency="EUR")).minor == 200
    with pytest.raises(ValidationError, match="GPB"):
        Money(minor=1, currency="GPB")
    with pytest.raises(ValueError, match="cannot add"):
        Money(minor=1, currency="EUR") + Money(minor=1, currency="DKK")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+45 12 34 56 78", None, "+4512345678"),
        ("12345678", "DK", "+4512345678"),
        ("0045 12345678", None, "+4512345678"),
        ("07700 900123", "GB", "+447700900123"),
        ("+47 912 34 567", None, "+4791234567"),
    ],
)
def test_mobiles_normalise_to_e164_across_formats(
    raw: str, region: str | None, expected: str
) -> None:
    assert normalize_mobile(raw, region) == expected


def test_email_normalisation() -> None:
    assert normalize_email("  Jane.Doe@Example.COM ") == "Jane.Doe@example.com"
    with pytest.raises(ValueError, match="invalid email"):
        normalize_email("jane@")


def test_invalid_values_are_reported_per_field_not_dropped() -> None:
    c = Contact.build(email="nope@", mobile="12", default_region="GB", first_name="Jo")
    assert c.email is None and c.mobile is None and c.first_name == "Jo"
    assert [(i.field, i.value) for i in c.issues] == [("email", "nope@"), ("mobile", "12")]
    assert "email:" in c.issue_text() and "mobile:" in c.issue_text()


def test_stable_hash_ignores_key_order() -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})
