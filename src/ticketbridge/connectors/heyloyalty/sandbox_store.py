"""In-memory state of the Heyloyalty sandbox: lists with fields, members, tracking events.

Behaviour follows ``platforms.md`` section 5; the [INFER] parts are marked where decided.
Invariants the tests rely on:

* a member is found by email (case-insensitively) or by mobile in any format: mobiles are
  compared as E.164 in the list's country (``+45 12 34 56 78`` = ``4512345678`` = ``12345678``)
  and stored as the list shows them (national digits for the list's country);
* every member write is counted with ``Stats.record_write`` under ``member:<member id>``
  (``create`` / ``update`` / ``delete``), every imported order under ``tracking:<order id>``
  (``create``, once per order per import call: the import dedupes nothing);
* updating an unsubscribed member re-activates it (the official client's warning);
* validation failures raise :class:`Invalid` with messages per field, e.g. a value for a field
  the list does not have.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from ticketbridge.sandbox import Stats

STATUSES = {"active", "inactive", "unsubscribed", "bounced"}
EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+\.)+[A-Za-z0-9-]{2,}$")
_STAMP = "%Y-%m-%d %H:%M:%S"
# The fixed fields every list has (platforms.md 5.3), with the format each one validates.
# fmt: off
FIXED_FIELDS = (
    ("firstname", "text"), ("lastname", "text"), ("email", "email"), ("mobile", "mobile"),
    ("sex", "single_choice"), ("birthdate", "date"), ("address", "text"),
    ("postalcode", "text"), ("city", "text"), ("country", "single_choice"),
    ("password", "text"), ("reference", "text"),
)
# The custom field Heyloyalty's Ticketmaster guide sets up; the Ticketmaster id goes in the
# fixed ``reference`` field every list has.
CUSTOM_FIELDS = (("Cardnumber", "text"),)
SEX_OPTIONS = ({"id": 1, "label": "Mand"}, {"id": 2, "label": "Kvinde"})
COUNTRY_OPTIONS = ({"id": 53, "label": "Danmark"}, {"id": 160, "label": "Norge"},
                   {"id": 205, "label": "Sverige"})  # [INFER] ids of the country field
# fmt: on


class Invalid(Exception):
    """422: messages per field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{f}: {m}" for f, msgs in errors.items() for m in msgs))


class NotFound(Exception):
    """404 with the message Heyloyalty uses (e.g. "List not found")."""


class BadRequest(Exception):
    """400: a malformed query (e.g. ``perpage`` above 5000)."""


@dataclass
class ListField:
    id: int
    name: str
    type: str  # "fixed" | "custom"
    format: str
    options: tuple[dict[str, Any], ...] = ()


@dataclass
class HlList:
    id: int
    name: str
    region: str
    double_optin: bool
    fields: dict[str, ListField]
    members: dict[str, MemberRow] = field(default_factory=dict)
    # Where each member was added (its place in ``members``), and per field the members
    # holding each comparable value: a look-up by e-mail or mobile was a pass over every
    # member, so a full load was quadratic in the sandbox. Entries are only ever added; a
    # look-up checks each candidate's current value, so a changed or deleted member found
    # under an old value is passed over.
    seq: dict[str, int] = field(default_factory=dict)
    by_value: dict[str, dict[Any, list[str]]] = field(default_factory=dict)


@dataclass
class MemberRow:
    id: str
    created_at: str
    updated_at: str
    values: dict[str, Any]
    status: dict[str, str | None]
    pending_optin: bool = False  # a "temporary" member waiting for its opt-in confirmation
    optin_mails: int = 0
    automations: int = 0
    webhooks: int = 0


def truthy(value: Any) -> bool:
    return str(value).strip().casefold() in ("1", "true", "yes", "on")


class HeyloyaltyStore:
    def __init__(
        self,
        *,
        stats: Stats,
        seed: int = 42,
        records: int = 0,
        today: datetime | None = None,
        list_id: int = 4711,
        region: str = "DK",
        double_optin: bool = True,
        tracking_ids: tuple[str, ...] = ("sandbox-tracking",),
    ) -> None:
        self.stats = stats
        self.seed = seed
        self.records = records
        self.today = today
        self.list_id = list_id
        self.region = region
        self.double_optin = double_optin
        self.tracking_ids = tracking_ids
        self.reset()

    # -- SandboxStore protocol ---------------------------------------------------------

    def reset(self) -> None:
        self._rng = random.Random(self.seed)  # member ids are reproducible per seed
        fields: dict[str, ListField] = {}
        for i, (name, fmt) in enumerate(FIXED_FIELDS, start=1):
            options = SEX_OPTIONS if name == "sex" else COUNTRY_OPTIONS if name == "country" else ()
            fields[name] = ListField(i, name, "fixed", fmt, options)
        for i, (name, fmt) in enumerate(CUSTOM_FIELDS, start=101):
            fields[name] = ListField(i, name, "custom", fmt)
        self.lists: dict[int, HlList] = {
            self.list_id: HlList(
                self.list_id, "Ticketmaster", self.region, self.double_optin, fields
            ),
            self.list_id + 1: HlList(
                self.list_id + 1,
                "Nyhedsbrev",
                self.region,
                True,
                {k: v for k, v in fields.items() if v.type == "fixed"},
            ),
        }
        self.tracking: list[dict[str, Any]] = []
        self._seed_members(self.lists[self.list_id])

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """``{"unsubscribe": [email, ...]}``: those customers unsubscribed from the list."""
        lst = self.lists[self.list_id]
        changed, missing = [], []
        for email in params.get("unsubscribe", []):
            member = self.find(lst, "email", str(email))
            if member is None:
                missing.append(email)
                continue
            if member.status.get("status") != "unsubscribed":
                member.status.update(status="unsubscribed", email="unsubscribed")
                member.updated_at = self.now()
                changed.append(member.values.get("email"))
        return {"unsubscribed": changed, "not_found": missing}

    def dump(self) -> dict[str, Any]:
        lst = self.lists[self.list_id]
        members = []
        for m in lst.members.values():
            row = asdict(m)
            row["fields"] = {k: v for k, v in row.pop("values").items() if v is not None}
            members.append(row)
        return {
            "list": {
                "id": lst.id,
                "name": lst.name,
                "region": lst.region,
                "double_optin": lst.double_optin,
                "fields": list(lst.fields),
            },
            "members": members,
            "tracking": list(self.tracking),
            "counts": {
                "members": len(members),
                "tracking_rows": len(self.tracking),
                "tracked_orders": len({e.get("order_id") for e in self.tracking}),
            },
        }

    # -- helpers -----------------------------------------------------------------------

    def now(self) -> str:
        return (self.today or datetime.now(UTC)).strftime(_STAMP)

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _seed_members(self, lst: HlList) -> None:
        from faker import Faker  # here, not at the top: a sync run imports this module

        fake = Faker("da_DK")
        fake.seed_instance(self.seed)
        for i in range(self.records):
            first, last = fake.first_name(), fake.last_name()
            local = re.sub(r"[^a-z]", "", f"{first}.{last}".lower()) or "medlem"
            unsubscribed = fake.random_int(0, 9) == 0
            member = MemberRow(
                id=self._new_id(),
                created_at=self.now(),
                updated_at=self.now(),
                values={
                    "firstname": first,
                    "lastname": last,
                    "email": f"{local}.{i}@example.dk",
                    "mobile": f"2{i % 10_000_000:07d}",
                    "birthdate": fake.date_of_birth(minimum_age=18).isoformat(),
                    "reference": str(100_000 + i),
                },
                status={
                    "status": "unsubscribed" if unsubscribed else "active",
                    "email": "unsubscribed" if unsubscribed else "active",
                    "mobile": "active",
                },
            )
            self._add_member(lst, member)

    def _add_member(self, lst: HlList, member: MemberRow) -> None:
        lst.members[member.id] = member
        lst.seq[member.id] = len(lst.seq)
        self._index_member(lst, member)

    def _index_member(self, lst: HlList, member: MemberRow) -> None:
        for name, index in lst.by_value.items():
            key = self.comparable(lst, name, member.values.get(name))
            if _hashable(key):
                ids = index.setdefault(key, [])
                if member.id not in ids:
                    ids.append(member.id)

    def get_list(self, list_id: int) -> HlList:
        found = self.lists.get(list_id)
        if found is None:
            raise NotFound("List not found")
        return found

    def e164(self, lst: HlList, raw: Any) -> str | None:
        text = str(raw or "").strip()
        if text.startswith("00"):
            text = "+" + text[2:]
        try:
            number = phonenumbers.parse(text, lst.region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_possible_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def comparable(self, lst: HlList, name: str, value: Any) -> Any:
        """The form values of a field are compared in: case-folded email, E.164 mobile."""
        if value is None:
            return None
        if name == "email":
            return str(value).strip().casefold()
        if name == "mobile":
            return self.e164(lst, value) or str(value)
        return value

    def find(
        self, lst: HlList, name: str, value: Any, *, temporary: bool = True
    ) -> MemberRow | None:
        """The first member (in the order they were added) whose ``name`` compares equal to
        ``value``; with ``temporary=False`` members still waiting for their opt-in are not
        found."""
        wanted = self.comparable(lst, name, value)
        if wanted is None:
            return None
        matches = [
            member
            for member in self._candidates(lst, name, wanted)
            if (temporary or not member.pending_optin)
            and self.comparable(lst, name, member.values.get(name)) == wanted
        ]
        return min(matches, key=lambda m: lst.seq[m.id], default=None)

    def _candidates(self, lst: HlList, name: str, wanted: Any) -> list[MemberRow]:
        if not _hashable(wanted):  # not an e-mail or a mobile: every member is a candidate
            return list(lst.members.values())
        index = lst.by_value.get(name)
        if index is None:
            index = lst.by_value[name] = {}
            for member in lst.members.values():
                key = self.comparable(lst, name, member.values.get(name))
                if _hashable(key):
                    index.setdefault(key, []).append(member.id)
        found = (lst.members.get(i) for i in index.get(wanted, ()))
        return [member for member in found if member is not None]

    def member(self, lst: HlList, member_id: str) -> MemberRow:
        found = lst.members.get(member_id)
        if found is None:
            raise NotFound("Member not found")
        return found

    # -- validation --------------------------------------------------------------------

    def clean(self, lst: HlList, values: dict[str, Any]) -> dict[str, Any]:
        """Validated list field values (``status`` is handled by the caller)."""
        errors: dict[str, list[str]] = {}
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "status":
                continue
            spec = lst.fields.get(name)
            if spec is None:
                errors[name] = [f"The field {name} does not exist on list {lst.id}."]
                continue
            if value is None or value == "":
                out[name] = None
                continue
            problem, cleaned = self._check_value(lst, spec, value)
            if problem:
                errors[name] = [problem]
            else:
                out[name] = cleaned
        if errors:
            raise Invalid(errors)
        return out

    def _check_value(self, lst: HlList, spec: ListField, value: Any) -> tuple[str | None, Any]:
        name, fmt = spec.name, spec.format
        if fmt in ("single_choice", "multiple_choice"):
            ids = {o["id"] for o in spec.options}
            chosen = value if isinstance(value, list) else [value]
            try:
                picked = [int(str(v)) for v in chosen]
            except ValueError:
                picked = [-1]
            if (fmt == "single_choice" and len(picked) != 1) or any(p not in ids for p in picked):
                return f"The selected {name} is invalid.", None
            return None, picked if fmt == "multiple_choice" else picked[0]
        if isinstance(value, dict | list):
            return f"The {name} must be a single value.", None
        text = str(value).strip()
        if fmt == "email":
            if not EMAIL.match(text):
                return f"The {name} must be a valid email address.", None
            return None, text
        if fmt == "mobile":
            e164 = self.e164(lst, text)
            if e164 is None:
                return f"The {name} must be a valid mobile number.", None
            number = phonenumbers.parse(e164)
            national = number.country_code == phonenumbers.country_code_for_region(lst.region)
            return None, phonenumbers.national_significant_number(number) if national else e164
        if fmt == "date":
            try:
                return None, datetime.strptime(text, "%Y-%m-%d").strftime("%Y-%m-%d")
            except ValueError:
                return f"The {name} does not match the format Y-m-d.", None
        return None, text

    def _status_update(self, status: Any) -> dict[str, str]:
        if status in (None, ""):
            return {}
        if not isinstance(status, dict):
            raise Invalid({"status": ["The status must be an object."]})
        bad = {
            k: v
            for k, v in status.items()
            if k not in ("status", "email", "mobile") or v not in STATUSES
        }
        if bad:
            raise Invalid({"status": [f"The status {sorted(bad)} is invalid."]})
        return {str(k): str(v) for k, v in status.items()}

    # -- writes ------------------------------------------------------------------------

    def _apply_status(self, member: MemberRow, update: dict[str, str]) -> None:
        member.status.update(update)
        channels = [
            member.status.get(c)
            for c in ("email", "mobile")
            if member.values.get(c) not in (None, "")
        ]
        if "status" not in update and channels and all(c == "unsubscribed" for c in channels):
            member.status["status"] = "unsubscribed"

    def create(
        self, lst: HlList, values: dict[str, Any], *, skip_optin: bool, flags: dict[str, bool]
    ) -> MemberRow:
        cleaned = self.clean(lst, values)
        status = self._status_update(values.get("status"))
        if not cleaned.get("email") and not cleaned.get("mobile"):
            raise Invalid({"email": ["An email or a mobile is required."]})
        pending = lst.double_optin and not skip_optin
        now = self.now()
        member = MemberRow(
            id=self._new_id(),
            created_at=now,
            updated_at=now,
            values=cleaned,
            status={
                "status": "inactive" if pending else "active",
                "email": "active" if cleaned.get("email") else None,
                "mobile": "active" if cleaned.get("mobile") else None,
            },
            pending_optin=pending,
            optin_mails=1 if pending else 0,
        )
        self._apply_status(member, status)
        self._flags(member, flags)
        self._add_member(lst, member)
        self.stats.record_write(f"member:{member.id}", "create")
        return member

    def update(
        self,
        lst: HlList,
        member: MemberRow,
        values: dict[str, Any],
        *,
        replace: bool,
        flags: dict[str, bool],
    ) -> MemberRow:
        """PUT (``replace``: unsent fields are cleared) or PATCH / upsert-update."""
        cleaned = self.clean(lst, values)
        status = self._status_update(values.get("status"))
        if replace:
            member.values = cleaned
        else:
            member.values.update(cleaned)
        self._index_member(lst, member)
        if member.status.get("status") == "unsubscribed":
            # "updating unsubscribed members will reactivate these" (HL-phpclient)
            member.status["status"] = "active"
            for channel in ("email", "mobile"):
                if member.status.get(channel) == "unsubscribed":
                    member.status[channel] = "active"
        self._apply_status(member, status)
        self._flags(member, flags)
        member.updated_at = self.now()
        self.stats.record_write(f"member:{member.id}", "update")
        return member

    def _flags(self, member: MemberRow, flags: dict[str, bool]) -> None:
        member.automations += 1 if flags.get("automations") else 0
        member.webhooks += 1 if flags.get("webhooks") else 0

    def upsert(self, lst: HlList, body: dict[str, Any]) -> tuple[MemberRow, bool]:
        unique = str(body.get("unique_field") or "")
        if unique not in ("email", "mobile"):
            raise Invalid({"unique_field": ["The unique field must be email or mobile."]})
        values = body.get("member")
        if not isinstance(values, dict) or values.get(unique) in (None, ""):
            raise Invalid({f"member.{unique}": [f"The member.{unique} field is required."]})
        if "status" in values:
            # platforms.md 5.4 documents list fields only in the upsert's member; the status
            # changes by PATCH of the member.
            raise Invalid({"member.status": [f"The field status does not exist on list {lst.id}."]})
        flags = {
            "automations": truthy(body.get("trigger_autoresponder")),
            "webhooks": truthy(body.get("trigger_webhooks")),
        }
        found = self.find(
            lst, unique, values[unique], temporary=truthy(body.get("search_temporary"))
        )
        if found is not None:
            return self.update(lst, found, values, replace=False, flags=flags), False
        return self.create(lst, values, skip_optin=truthy(body.get("skipOptIn")), flags=flags), True

    def delete(self, lst: HlList, member: MemberRow, *, obscure: bool) -> None:
        if obscure:  # GDPR anonymisation: the row stays, its data goes
            member.values = {}
            member.status = {"status": "unsubscribed", "email": None, "mobile": None}
            self.stats.record_write(f"member:{member.id}", "update")
            return
        del lst.members[member.id]
        self.stats.record_write(f"member:{member.id}", "delete")

    # -- queries -----------------------------------------------------------------------

    def query(
        self,
        lst: HlList,
        tests: list[Callable[[MemberRow], bool]],
        logic: str,
        orderby: str,
        order: int,
    ) -> list[MemberRow]:
        """Members passing ``tests`` (all, or any with ``logic="or"``), sorted by ``orderby``."""
        if orderby not in self.filterable(lst):
            raise BadRequest(f"Unknown orderby field {orderby}")
        combine: Callable[[Any], bool] = any if logic == "or" else all
        rows = [m for m in lst.members.values() if not tests or combine(t(m) for t in tests)]
        rows.sort(key=lambda m: str(self.value(m, orderby) or ""), reverse=order < 0)
        return rows

    @staticmethod
    def filterable(lst: HlList) -> set[str]:
        return set(lst.fields) | {"id", "created_at", "updated_at"}

    @staticmethod
    def value(member: MemberRow, name: str) -> Any:
        if name in ("id", "created_at", "updated_at"):
            return getattr(member, name)
        return member.values.get(name)

    # -- tracking ----------------------------------------------------------------------

    def import_tracking(self, tracking_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Store the (validated) rows of one import and count each order once per call."""
        if tracking_id not in self.tracking_ids:
            raise NotFound("Tracking integration not found")
        now = self.now()
        stored = [
            {"tracking_id": tracking_id, "received_at": now, "event_type": "purchasedBasket", **r}
            for r in rows
        ]
        self.tracking.extend(stored)
        orders = dict.fromkeys(
            str(r.get("order_id") or f"{r['email']}@{r['created_at']}") for r in stored
        )
        for order_id in orders:
            self.stats.record_write(f"tracking:{order_id}", "create")
        return {"imported": len(stored), "orders": len(orders)}


def _hashable(key: Any) -> bool:
    """Whether ``key`` can index a member (None never does: it matches nothing)."""
    if key is None:
        return False
    try:
        hash(key)
    except TypeError:
        return False
    return True
