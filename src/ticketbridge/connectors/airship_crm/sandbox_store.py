"""In-memory state of the Airship CRM sandbox: units, groups, contacts, bookings.

Behaviour follows ``platforms.md`` section 2; the [INFER] parts are marked where they are
decided. Invariants the tests rely on:

* email and mobile are unique per account; an upsert matches by email, else by mobile;
* bookings upsert on ``booking_reference`` (account-wide);
* every contact or booking write is counted with ``Stats.record_write`` under
  ``contact:<email or mobile>`` / ``booking:<booking_reference>``, kind ``create``/``update``;
* validation failures raise :class:`Invalid` with Laravel-style ``(field, message)`` pairs,
  unless the request carries the ``discard_invalid_data`` rule, which drops the bad fields.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ticketbridge.sandbox import Stats

DEFAULT_UNITS = ("Riverside Hall", "Bowl Arena", "Harbour Stage")
# Documented ids (1 Website, 9 In House, 10 Third Party; 13 General Booking). The lists hold
# only what the documentation names: any other id is refused like an unknown id would be.
SOURCES = {1: "Website", 9: "In House", 10: "Third Party"}
TYPES = {13: "General Booking"}
# (value, name, range) [INFER]: the docs give 1 New, 100 Complete, 550 Cancelled as values
# inside ranges but not the ranges themselves.
STAGES = ((1, "New", 1, 99), (100, "Complete", 100, 499), (550, "Cancelled", 500, 599))
RULES = {"preserve_consent", "discard_invalid_data"}
# Airship checks MX records; offline, these reserved TLDs stand for "domain has no MX".
NO_MX_SUFFIXES = (".invalid", ".test", ".example", ".localhost", ".local")

_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+\.)+[A-Za-z0-9-]{2,}$")
_UK_MOBILE = re.compile(r"^(?:447|07)([1-9]\d{8})$")
_DATETIME = "%Y-%m-%d %H:%M:%S"
_MONEY_FIELDS = ("deposit_paid", "hpbr_drink", "hpbr_food", "hpbr_entertainment")
_ELEMENT = re.compile(r"^element_(0[1-9]|1\d|20)$")


class Invalid(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))


@dataclass
class Unit:
    id: int
    name: str
    is_root: bool = False


@dataclass
class Group:
    id: int
    unit_id: int
    name: str
    folder_name: str | None


@dataclass
class Contact:
    id: int
    created_at: str
    updated_at: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    mobile_number: str | None = None
    gender: str | None = None
    dob: str | None = None
    allow_email: bool | None = None
    allow_sms: bool | None = None
    source_id: int | None = None
    source_name: str | None = None
    units: dict[int, list[int]] = field(default_factory=dict)  # unit id -> group ids

    @property
    def write_key(self) -> str:
        return f"contact:{self.email or self.mobile_number}"


@dataclass
class Booking:
    id: int
    contact_id: int
    created_at: str
    updated_at: str
    booking_reference: str | None = None
    unit_id: int | None = None
    stage_value: int | None = None
    type_id: int | None = None
    source_id: int | None = None
    party_datetime: str | None = None
    party_enquirytime: str | None = None
    party_size: int | None = None
    deposit_paid: str | None = None
    hpbr_drink: str | None = None
    hpbr_food: str | None = None
    hpbr_entertainment: str | None = None
    provider_id: str | None = None
    table_numbers: list[str] = field(default_factory=list)
    data: dict[str, str] = field(default_factory=dict)
    notes: list[dict[str, str]] = field(default_factory=list)

    @property
    def write_key(self) -> str:
        return f"booking:{self.booking_reference or '#' + str(self.id)}"


class _Checker:
    """Collects validation errors, or drops the bad values under ``discard_invalid_data``."""

    def __init__(self, discard: bool) -> None:
        self.discard = discard
        self.errors: list[tuple[str, str]] = []

    def bad(self, name: str, message: str) -> None:
        if not self.discard:
            self.errors.append((name, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise Invalid(self.errors)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _bool(value: Any) -> bool | None:
    text = str(value).strip().casefold()
    return {"1": True, "true": True, "0": False, "false": False}.get(text)


class AirshipStore:
    def __init__(
        self,
        *,
        stats: Stats,
        seed: int = 42,
        records: int = 0,
        today: datetime | None = None,
        units: list[str] | None = None,
        account_id: int = 1,
    ) -> None:
        self.stats = stats
        self.seed = seed
        self.records = records
        self.today = today
        self.unit_names = list(units) if units is not None else list(DEFAULT_UNITS)
        self.account_id = account_id
        self._now_second, self._now_text = -1, ""
        self.reset()

    # -- SandboxStore protocol ---------------------------------------------------------

    def reset(self) -> None:
        base = 1000 * self.account_id  # deterministic ids, distinct per account
        self.units = [Unit(base, f"Account {self.account_id}", is_root=True)]
        self.units += [Unit(base + i, n) for i, n in enumerate(self.unit_names, start=1)]
        self.groups: list[Group] = []
        self.contacts: dict[int, Contact] = {}
        self.bookings: dict[int, Booking] = {}
        # Look-ups by email, mobile and reference are dict hits, not scans: a full load of
        # N bookings would otherwise cost O(N^2) here, and the benchmark would measure this
        # simulator instead of the client. An entry can go stale when a value changes; each
        # look-up checks the value it finds, so a stale entry reads as "not found".
        self._by_email: dict[str, int] = {}
        self._by_mobile: dict[str, int] = {}
        self._by_reference: dict[str, int] = {}
        self._next = {"contact": 5001, "booking": 70001, "group": 301}
        self._seed_contacts()

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """``{"unsubscribe": [email, ...]}``: the customer opted out in the CRM itself."""
        changed, missing = [], []
        for email in params.get("unsubscribe", []):
            found = self.by_email(str(email))
            if found is None:
                missing.append(email)
                continue
            if found.allow_email is not False:
                found.allow_email = False
                found.updated_at = self.now()
                changed.append(found.email)
        return {"unsubscribed": changed, "not_found": missing}

    def dump(self) -> dict[str, Any]:
        units = {u.id: u for u in self.units}
        groups = {g.id: g for g in self.groups}
        contacts = []
        for c in self.contacts.values():
            row = asdict(c)
            row["units"] = [
                {
                    "id": uid,
                    "name": units[uid].name,
                    "groups": [
                        {"id": g, "name": groups[g].name, "folder_name": groups[g].folder_name}
                        for g in gids
                    ],
                }
                for uid, gids in c.units.items()
            ]
            contacts.append(row)
        return {
            "account_id": self.account_id,
            "units": [asdict(u) for u in self.units],
            "groups": [asdict(g) for g in self.groups],
            "contacts": contacts,
            "bookings": [asdict(b) for b in self.bookings.values()],
            "counts": {
                "units": len(self.units),
                "groups": len(self.groups),
                "contacts": len(self.contacts),
                "bookings": len(self.bookings),
            },
        }

    # -- helpers -----------------------------------------------------------------------

    def now(self) -> str:
        if self.today is not None:
            return self.today.strftime(_DATETIME)
        # Formatted once per second, not on every call (several per request).
        second = int(time.time())
        if second != self._now_second:
            self._now_second = second
            self._now_text = datetime.fromtimestamp(second, UTC).strftime(_DATETIME)
        return self._now_text

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value

    def _seed_contacts(self) -> None:
        from faker import Faker  # here, not at the top: a sync run imports this module

        fake = Faker("en_GB")
        fake.seed_instance(self.seed)
        venues = [u for u in self.units if not u.is_root] or self.units
        for i in range(self.records):
            first, last = fake.first_name(), fake.last_name()
            local = re.sub(r"[^a-z]", "", f"{first}.{last}".lower())
            contact = Contact(
                id=self._id("contact"),
                created_at=self.now(),
                updated_at=self.now(),
                first_name=first,
                last_name=last,
                email=f"{local}.{i}@example.co.uk",
                mobile_number=f"4477{i:08d}",
                source_name="Sandbox seed",
                allow_email=fake.random_element([True, False, None]),
                allow_sms=fake.random_element([True, False, None]),
            )
            contact.units[fake.random_element(venues).id] = []
            self.contacts[contact.id] = contact
            self._index_contact(contact)

    def unit(self, unit_id: int | None) -> Unit | None:
        return next((u for u in self.units if u.id == unit_id), None)

    def _index_contact(self, contact: Contact) -> None:
        if contact.email:
            self._by_email[contact.email.casefold()] = contact.id
        if contact.mobile_number:
            self._by_mobile[contact.mobile_number] = contact.id

    def by_email(self, email: str) -> Contact | None:
        key = email.strip().casefold()
        found = self.contacts.get(self._by_email.get(key, -1))
        return found if found is not None and (found.email or "").casefold() == key else None

    def by_mobile(self, mobile: str) -> Contact | None:
        norm = uk_mobile(mobile)
        if norm is None:
            return None
        found = self.contacts.get(self._by_mobile.get(norm, -1))
        return found if found is not None and found.mobile_number == norm else None

    def by_name(self, first: str | None, last: str | None) -> list[Contact]:
        def same(a: str | None, b: str | None) -> bool:
            return b is None or (a or "").casefold() == b.strip().casefold()

        return [
            c
            for c in self.contacts.values()
            if same(c.first_name, first) and same(c.last_name, last)
        ]

    def _index_booking(self, booking: Booking) -> None:
        if booking.booking_reference:
            self._by_reference[booking.booking_reference] = booking.id

    def booking_by_reference(self, reference: str) -> Booking | None:
        found = self.bookings.get(self._by_reference.get(reference, -1))
        return found if found is not None and found.booking_reference == reference else None

    def bookings_by_elements(self, elements: dict[str, str]) -> list[Booking]:
        return [
            b
            for b in self.bookings.values()
            if all(b.data.get(k) == v for k, v in elements.items())
        ]

    # -- validation --------------------------------------------------------------------

    def _contact_fields(self, body: dict[str, Any], check: _Checker) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("first_name", "last_name", "source_name"):
            if body.get(name) not in (None, ""):
                out[name] = str(body[name]).strip()
        email = body.get("email")
        if email not in (None, ""):
            text = str(email).strip()
            if not _EMAIL.match(text) or text.casefold().endswith(NO_MX_SUFFIXES):
                check.bad("email", "The email must be a valid email address.")
            else:
                out["email"] = text
        mobile = body.get("mobile_number")
        if mobile not in (None, ""):
            norm = uk_mobile(str(mobile))
            if norm is None:
                check.bad("mobile_number", "The mobile number must be a valid UK mobile number.")
            else:
                out["mobile_number"] = norm
        if body.get("gender") is not None:
            if body["gender"] in ("M", "F", ""):
                out["gender"] = body["gender"] or None
            else:
                check.bad("gender", "The selected gender is invalid.")
        if body.get("dob") not in (None, ""):
            try:
                out["dob"] = datetime.strptime(str(body["dob"]), "%Y-%m-%d").strftime("%Y-%m-%d")
            except ValueError:
                check.bad("dob", "The dob does not match the format Y-m-d.")
        for name in ("allow_email", "allow_sms"):
            if name in body and body[name] is not None:
                flag = _bool(body[name])
                if flag is None:
                    check.bad(name, f"The {name.replace('_', ' ')} field must be true or false.")
                else:
                    out[name] = flag
        if body.get("source_id") is not None:
            if _int(body["source_id"]) in SOURCES:
                out["source_id"] = _int(body["source_id"])
            else:
                check.bad("source_id", "The selected source id is invalid.")
        return out

    def _units_and_groups(
        self, body: dict[str, Any], check: _Checker
    ) -> list[tuple[int, list[Any]]]:
        """``units[]`` as ``(unit_id, [group id | (name, folder)])``; groups made later."""
        out: list[tuple[int, list[Any]]] = []
        for i, raw in enumerate(body.get("units") or []):
            unit = self.unit(_int(raw.get("id")) if isinstance(raw, dict) else None)
            if unit is None:
                check.bad(f"units.{i}.id", f"The selected units.{i}.id is invalid.")
                continue
            refs: list[Any] = []
            for j, g in enumerate(raw.get("groups") or []):
                where = f"units.{i}.groups.{j}"
                if isinstance(g, dict) and g.get("id") is not None:
                    known = any(x.id == _int(g["id"]) and x.unit_id == unit.id for x in self.groups)
                    if known:
                        refs.append(_int(g["id"]))
                    else:
                        check.bad(f"{where}.id", f"The selected {where}.id is invalid.")
                elif isinstance(g, dict) and str(g.get("name") or "").strip():
                    refs.append((str(g["name"]).strip(), g.get("folder_name") or None))
                else:
                    check.bad(f"{where}.name", f"The {where}.name field is required.")
            out.append((unit.id, refs))
        return out

    def booking_fields(self, raw: dict[str, Any], check: _Checker, where: str) -> dict[str, Any]:
        """Validated booking fields present in ``raw`` (``where`` prefixes error fields)."""
        out: dict[str, Any] = {}

        def bad(name: str, message: str) -> None:
            check.bad(f"{where}{name}", message.replace(":f", f"{where}{name}"))

        if raw.get("booking_reference") not in (None, ""):
            out["booking_reference"] = str(raw["booking_reference"]).strip()
        if raw.get("unit_id") is not None:
            if self.unit(_int(raw["unit_id"])) is None:
                bad("unit_id", "The selected :f is invalid.")
            else:
                out["unit_id"] = _int(raw["unit_id"])
        for name, allowed in (("type_id", TYPES), ("source_id", SOURCES)):
            if raw.get(name) is not None:
                if _int(raw[name]) in allowed:
                    out[name] = _int(raw[name])
                else:
                    bad(name, "The selected :f is invalid.")
        if raw.get("stage_value") is not None:
            value = _int(raw["stage_value"])
            if value is None or not any(lo <= value <= hi for _, _, lo, hi in STAGES):
                bad("stage_value", "The selected :f is invalid.")
            else:
                out["stage_value"] = value
        if raw.get("party_size") is not None:
            size = _int(raw["party_size"])
            if size is None or size < 0:
                bad("party_size", "The :f must be an integer of at least 0.")
            else:
                out["party_size"] = size
        # The update endpoint documents ``enquiry_datetime`` for the same value.
        if raw.get("party_enquirytime") is None and raw.get("enquiry_datetime") is not None:
            raw = {**raw, "party_enquirytime": raw["enquiry_datetime"]}
        for name in ("party_datetime", "party_enquirytime"):
            if raw.get(name) not in (None, ""):
                try:
                    out[name] = datetime.strptime(str(raw[name]), _DATETIME).strftime(_DATETIME)
                except ValueError:
                    bad(name, "The :f does not match the format Y-m-d H:i:s.")
        for name in _MONEY_FIELDS:
            if raw.get(name) not in (None, ""):
                try:
                    out[name] = f"{Decimal(str(raw[name])):.2f}"
                except InvalidOperation:
                    bad(name, "The :f must be a number.")
        if raw.get("provider_id") is not None:
            out["provider_id"] = str(raw["provider_id"])
        if isinstance(raw.get("table_numbers"), list):
            out["table_numbers"] = [str(t) for t in raw["table_numbers"]]
        if isinstance(raw.get("data"), dict):
            for key, value in raw["data"].items():
                if _ELEMENT.match(key):
                    out.setdefault("data", {})[key] = "" if value is None else str(value)
                else:
                    bad(f"data.{key}", "The :f field is not allowed.")
        if isinstance(raw.get("notes"), list):
            out["notes"] = [
                {
                    "note": str(n.get("note") or n.get("text") or ""),
                    "time": str(n.get("time") or self.now()),
                }
                for n in raw["notes"]
                if isinstance(n, dict)
            ]
        return out

    # -- writes ------------------------------------------------------------------------

    def upsert_contact(self, body: dict[str, Any]) -> tuple[Contact, bool]:
        """``POST /v1/contact``. Returns the contact and whether it was created."""
        rules = set()
        for i, rule in enumerate(body.get("rules") or []):
            name = rule.get("rule_name") if isinstance(rule, dict) else None
            if name not in RULES:
                raise Invalid(
                    [(f"rules.{i}.rule_name", f"The selected rules.{i}.rule_name is invalid.")]
                )
            rules.add(name)
        check = _Checker(discard="discard_invalid_data" in rules)
        fields = self._contact_fields(body, check)
        units = self._units_and_groups(body, check)
        raw_bookings = [b for b in body.get("bookings") or [] if isinstance(b, dict)]
        bookings = [
            self.booking_fields(b, check, f"bookings.{i}.") for i, b in enumerate(raw_bookings)
        ]
        found = self.by_email(fields["email"]) if "email" in fields else None
        if found is None and "mobile_number" in fields:
            found = self.by_mobile(fields["mobile_number"])
        if "mobile_number" in fields:
            owner = self.by_mobile(fields["mobile_number"])
            if owner is not None and found is not None and owner.id != found.id:
                # Unique per account: the mobile belongs to a different contact.
                check.bad("mobile_number", "The mobile number has already been taken.")
                fields.pop("mobile_number")
        check.raise_if_any()
        if found is None and not ({"email", "mobile_number"} & fields.keys()):
            raise Invalid([("email", "An email address or mobile number is required.")])
        created = found is None
        now = self.now()
        contact = found or Contact(id=self._id("contact"), created_at=now, updated_at=now)
        if not created and "preserve_consent" in rules:
            # Existing opt-ins (and opt-outs) stay as they are; only unset ones are filled.
            for name in ("allow_email", "allow_sms"):
                if getattr(contact, name) is not None:
                    fields.pop(name, None)
        for name, value in fields.items():
            setattr(contact, name, value)
        contact.updated_at = now
        self.contacts[contact.id] = contact
        self._index_contact(contact)
        for unit_id, refs in units:
            members = contact.units.setdefault(unit_id, [])
            for ref in refs:
                gid = ref if isinstance(ref, int) else self._group(unit_id, *ref).id
                if gid not in members:
                    members.append(gid)
        self.stats.record_write(contact.write_key, "create" if created else "update")
        default_unit = units[0][0] if units else next(iter(contact.units), None)
        for fields_b in bookings:
            self._upsert_booking(contact, fields_b, default_unit)
        return contact, created

    def _group(self, unit_id: int, name: str, folder: str | None) -> Group:
        for g in self.groups:
            if g.unit_id == unit_id and g.name.casefold() == name.casefold():
                return g  # an existing group keeps its folder
        group = Group(self._id("group"), unit_id, name, folder)
        self.groups.append(group)
        return group

    def _upsert_booking(self, contact: Contact, fields: dict[str, Any], unit: int | None) -> None:
        ref = fields.get("booking_reference")
        found = self.booking_by_reference(ref) if ref else None
        now = self.now()
        booking = found or Booking(
            id=self._id("booking"),
            contact_id=contact.id,
            created_at=now,
            updated_at=now,
            unit_id=unit,
        )
        # [INFER] a reference seen under another contact moves to the contact sent now.
        booking.contact_id = contact.id
        self._apply(booking, fields)
        self.bookings[booking.id] = booking
        self._index_booking(booking)
        self.stats.record_write(booking.write_key, "update" if found else "create")

    def _apply(self, booking: Booking, fields: dict[str, Any]) -> None:
        for name, value in fields.items():
            if name == "data":
                booking.data.update(value)  # elements not sent are kept
            else:
                setattr(booking, name, value)
        booking.updated_at = self.now()

    def update_booking(self, booking_id: int, body: dict[str, Any]) -> Booking | None:
        """``POST /v1/bookings/{id}``: None if there is no such booking in the account."""
        booking = self.bookings.get(booking_id)
        if booking is None:
            return None
        check = _Checker(discard=False)
        fields = self.booking_fields(body, check, "")
        check.raise_if_any()
        ref = fields.get("booking_reference")
        if ref and ref != booking.booking_reference and self.booking_by_reference(ref):
            raise Invalid([("booking_reference", "The booking reference has already been taken.")])
        self._apply(booking, fields)
        self._index_booking(booking)
        self.stats.record_write(booking.write_key, "update")
        return booking


def uk_mobile(raw: str) -> str | None:
    """``07700900123`` / ``447700900123`` (spaces allowed) -> ``447700900123``; else None."""
    digits = re.sub(r"[\s-]", "", raw)
    found = _UK_MOBILE.match(digits)
    return f"447{found.group(1)}" if found else None
