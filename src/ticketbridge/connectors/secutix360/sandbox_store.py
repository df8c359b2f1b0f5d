"""In-memory state of the SECUTIX 360 sandbox: tokens, tickets, cultural contacts.

Behaviour follows ``platforms.md`` section 7; the [INFER] and [GAP] parts are decided here.
Invariants the tests rely on:

* every answer is an envelope ``{requestId, statusCode, statusDetail}``; a business error
  is HTTP 200 with a non-success ``statusCode`` [INFER], raised here as :class:`S360Error`;
* a ticket row is 7.5's ``{ticket_id, s360_status, external_status, external_status_mode,
  owner_contact_number, holder_contact_number, updated_at}`` (plus the status's own date and
  the previous status when sent); the external status never changes ``s360_status``;
* tickets ``S360-000001`` … (TIXNGO's sandbox ids) exist from the seed; by default any other
  id is accepted too, as S-360 knows the tickets it injected and these come from TIXNGO;
  ``accept_unknown_tickets: false`` (or ``mutate`` op ``tickets``) makes an unknown id the
  envelope error ``TICKET_NOT_FOUND``;
* ``createCulturalContacts`` numbers each contact it makes, never merges two with one
  e-mail (so a client that creates twice is seen doing it: ``duplicate_emails`` in the
  data), and refuses the whole call when one contact is invalid, creating none;
* ``searchContact`` matches the e-mail exactly, case-insensitively;
* writes are counted with ``Stats.record_write`` under ``ticket:<id>`` (``create`` for the
  first external status of a row, ``update`` after) and ``contact:<number>`` (``create``);
* ``refuse`` (``mutate``) makes the status call of a deterministic share of tickets (by a
  hash of the id, the same in every run) answer an envelope error, until reset.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ticketbridge.model.mobile_status import STATUSES
from ticketbridge.sandbox import Stats

S360_STATUSES = ("Not printed", "Printed", "Controlled", "Invalidated", "Cancelled")  # [DOC 7.5]
_FIRST = ("Anna", "Luca", "Marie", "Noah", "Lea", "Elias", "Sofia", "Julien", "Mia", "Louis")
_LAST = ("Muller", "Rossi", "Favre", "Meier", "Blanc", "Keller", "Bianchi", "Roux", "Weber")
FIRST_CONTACT = 100001


class S360Error(Exception):
    """A non-success envelope: ``statusCode`` and ``statusDetail``, at ``http`` status."""

    def __init__(self, code: str, detail: str, http: int = 200) -> None:
        self.code = code
        self.detail = detail
        self.http = http
        super().__init__(f"{code}: {detail}")


@dataclass
class TicketRow:
    ticket_id: str
    s360_status: str
    external_status: str | None
    external_status_mode: str | None
    owner_contact_number: int | None
    holder_contact_number: int | None
    updated_at: str
    external_status_date: str | None = None
    previous_external_status: str | None = None


@dataclass
class CulturalContact:
    contact_number: int
    email: str
    first_name: str | None
    last_name: str | None
    identifier: str | None
    create_login: bool
    creation_date: str
    cultural: bool = True  # seeded buyers are full contacts; created ones cultural


def share_pick(ticket_id: str, share: float) -> bool:
    """The same tickets for a share in every run and process (not Python's hash)."""
    digest = hashlib.blake2b(ticket_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def _text(body: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise S360Error("INVALID_PARAMETER", f"{key} is required")
        return None
    if not isinstance(value, str):
        raise S360Error("INVALID_PARAMETER", f"{key} must be a string")
    return value.strip()


class S360Store:
    def __init__(
        self,
        *,
        stats: Stats,
        seed: int = 42,
        records: int = 0,
        today: datetime | None = None,
        login: str,
        password: str,
        token_ttl_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        accept_unknown_tickets: bool = True,
    ) -> None:
        self.stats = stats
        self.seed = seed
        self.records = records
        self.today = today
        self.login = login
        self.password = password
        self.default_ttl_s = token_ttl_s
        self.clock = clock
        self.default_accept_unknown = accept_unknown_tickets
        self.reset()

    def reset(self) -> None:
        self.rng = random.Random(self.seed)
        self.token_ttl_s = self.default_ttl_s
        self.tokens: dict[str, float] = {}  # token -> expiry on self.clock
        self.expired_answer = "http"  # "http": 401 + INVALID_TOKEN; "envelope": HTTP 200
        self.accept_unknown = self.default_accept_unknown
        self.tickets: dict[str, TicketRow] = {}
        self.contacts: dict[int, CulturalContact] = {}
        self.by_email: dict[str, list[int]] = {}  # case-folded e-mail -> contact numbers
        self.refusal: dict[str, Any] | None = None
        self._numbers = itertools.count(FIRST_CONTACT)
        self._requests = itertools.count(1)
        self._tokens = itertools.count(1)
        self._seed()

    def now(self) -> str:
        when = self.today or datetime.now(UTC)
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def request_id(self) -> str:
        return f"s360-req-{next(self._requests):08d}"

    def _seed(self) -> None:
        """``records`` tickets S-360 injected into TIXNGO (no external status yet) and a few
        buyers who are contacts already. Deterministic for a seed."""
        for i in range(1, self.records + 1):
            tid = f"S360-{i:06d}"
            status = "Printed" if self.rng.random() < 0.9 else "Not printed"
            self.tickets[tid] = TicketRow(tid, status, None, None, None, None, self.now())
        for i in range(1, self.records // 10 + 1):
            first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
            email = f"{first.lower()}.{last.lower()}.buyer{i}@s360-sandbox.example"
            self._add_contact(email, first, last, None, False, cultural=False)

    def _add_contact(
        self,
        email: str,
        first: str | None,
        last: str | None,
        identifier: str | None,
        create_login: bool,
        *,
        cultural: bool = True,
    ) -> CulturalContact:
        number = next(self._numbers)
        contact = CulturalContact(
            number, email, first, last, identifier, create_login, self.now(), cultural
        )
        self.contacts[number] = contact
        self.by_email.setdefault(email.casefold(), []).append(number)
        return contact

    # -- auth ----------------------------------------------------------------------------

    def issue_token(self, body: dict[str, Any]) -> dict[str, Any]:
        login = str(body.get("login") or "")
        password = str(body.get("password") or "")
        if not (
            hmac.compare_digest(login.encode(), self.login.encode())
            and hmac.compare_digest(password.encode(), self.password.encode())
        ):
            raise S360Error("AUTHENTICATION_FAILED", "Invalid operator login or password", 401)
        token = f"s360-token-{next(self._tokens)}-{self.rng.getrandbits(64):016x}"
        self.tokens[token] = self.clock() + self.token_ttl_s
        return {"token": token, "expiresIn": int(self.token_ttl_s)}

    def authorize(self, header: str, basic: Callable[[str], tuple[str, str]]) -> None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            expiry = self.tokens.get(value.strip())
            if expiry is not None and self.clock() < expiry:
                return
            http = 401 if self.expired_answer == "http" else 200
            code = "TOKEN_EXPIRED" if expiry is not None else "INVALID_TOKEN"
            raise S360Error(code, "The token is expired or unknown; obtain a new one", http)
        if scheme.lower() == "basic":
            user, secret = basic(value)
            if hmac.compare_digest(user.encode(), self.login.encode()) and hmac.compare_digest(
                secret.encode(), self.password.encode()
            ):
                return
        raise S360Error("AUTHENTICATION_FAILED", "Missing or invalid credentials", 401)

    # -- external access control ---------------------------------------------------------

    def catalog(self) -> dict[str, Any]:
        return {
            "accessControlCatalogData": {
                "products": [{"code": "MATCH", "name": "Home matches"}],
                "performances": [],
                "zones": [],
            }
        }

    def store_ticket(self, body: dict[str, Any]) -> dict[str, Any]:
        """The [GAP] method storing TIXNGO's status, owner and beneficiary on a ticket;
        keys absent from the body are left as they are."""
        tid = _text(body, "ticketId")
        assert tid is not None
        refusal = self.refusal
        if refusal is not None and (
            tid in refusal["ids"] or share_pick(tid, float(refusal["share"]))
        ):
            raise S360Error(str(refusal["code"]), f"{refusal['detail']} (ticket {tid})")
        row = self.tickets.get(tid)
        if row is None and not self.accept_unknown:
            raise S360Error("TICKET_NOT_FOUND", f"No ticket {tid} in this institution")
        status = _text(body, "externalStatus", required=False)
        mode = _text(body, "externalStatusMode", required=False)
        if (status is None) != (mode is None):
            raise S360Error(
                "INVALID_PARAMETER", "externalStatus and externalStatusMode go together"
            )
        if mode is not None and status is not None:
            if mode not in STATUSES:
                raise S360Error("INVALID_PARAMETER", f"externalStatusMode {mode!r} is unknown")
            if status not in STATUSES[mode]:
                raise S360Error(
                    "INVALID_PARAMETER", f"externalStatus {status!r} is not a {mode} status"
                )
        people = {}
        for key in ("ownerContactNumber", "beneficiaryContactNumber"):
            if body.get(key) is not None:
                people[key] = self._contact_number(body[key], key)
        first = row is None or row.external_status is None
        if row is None:
            row = TicketRow(tid, "Printed", None, None, None, None, self.now())
            self.tickets[tid] = row
        if status is not None:
            row.external_status, row.external_status_mode = status, mode
            row.external_status_date = _text(body, "externalStatusDate", required=False)
            row.previous_external_status = _text(body, "previousExternalStatus", required=False)
        if "ownerContactNumber" in people:
            row.owner_contact_number = people["ownerContactNumber"]
        if "beneficiaryContactNumber" in people:
            row.holder_contact_number = people["beneficiaryContactNumber"]
        row.updated_at = self.now()
        self.stats.record_write(f"ticket:{tid}", "create" if first else "update")
        return {"ticketId": tid}

    def _contact_number(self, raw: Any, key: str) -> int:
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise S360Error("INVALID_PARAMETER", f"{key} must be a contact number") from None
        if number not in self.contacts:
            raise S360Error("CONTACT_NOT_FOUND", f"No contact {number} ({key})")
        return number

    # -- contacts ------------------------------------------------------------------------

    def contact_json(self, c: CulturalContact) -> dict[str, Any]:
        return {
            "contactNumber": c.contact_number,
            "email": c.email,
            "firstName": c.first_name,
            "lastName": c.last_name,
        }

    def search_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        criteria = body.get("criteria")
        if not isinstance(criteria, dict) or not criteria:
            raise S360Error("INVALID_PARAMETER", "criteria is required")
        email = criteria.get("email")
        number = criteria.get("contactNumber")
        if email is not None:
            numbers = self.by_email.get(str(email).strip().casefold(), [])
            found = [self.contacts[n] for n in numbers]
        else:
            found = list(self.contacts.values())
        if number is not None:
            found = [c for c in found if str(c.contact_number) == str(number)]
        return {"contacts": [self.contact_json(c) for c in found]}

    def create_contacts(self, body: dict[str, Any]) -> dict[str, Any]:
        items = body.get("culturalContacts")
        if not isinstance(items, list) or not items:
            raise S360Error("INVALID_PARAMETER", "culturalContacts must be a non-empty list")
        # All checked before any is made: one bad contact refuses the call, creating none.
        checked = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise S360Error("INVALID_PARAMETER", f"culturalContacts[{i}] is not an object")
            email = item.get("email")
            if not isinstance(email, str) or "@" not in email.strip(" @"):
                raise S360Error(
                    "INVALID_PARAMETER", f"culturalContacts[{i}].email {email!r} is not an address"
                )
            checked.append(item)
        made, mapping = [], {}
        for item in checked:
            contact = self._add_contact(
                item["email"].strip(),
                item.get("firstName"),
                item.get("lastName"),
                None if item.get("identifier") is None else str(item["identifier"]),
                bool(item.get("createLogin")),
            )
            self.stats.record_write(f"contact:{contact.contact_number}", "create")
            made.append({**self.contact_json(contact), "identifier": contact.identifier})
            if contact.identifier is not None:
                mapping[contact.identifier] = contact.contact_number
        return {"culturalContactData": made, "identifierContactMap": mapping}

    def get_contact(self, body: dict[str, Any]) -> dict[str, Any]:
        number = self._contact_number(body.get("contactNumber"), "contactNumber")
        c = self.contacts[number]
        return {
            "contactNumber": c.contact_number,
            "contactId": c.contact_number,
            "creationDate": c.creation_date,
            "individualContact": {"firstName": c.first_name, "lastName": c.last_name},
            "communicationMeans": [{"type": "EMAIL", "value": c.email}],
            "addresses": [],
            "advantages": [],
            "authorizations": [],
            "contactCriteria": [],
        }

    # -- admin ---------------------------------------------------------------------------

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """``{"op": ...}``:

        * ``refuse``: ``share`` (0..1, by ticket id hash), ``ids``, ``code``
          (``INVALID_PARAMETER``), ``detail``: the status call of those tickets answers that
          envelope error until ``refuse`` with ``share: 0`` or reset;
        * ``tickets``: ``ids`` (add known tickets), ``accept_unknown`` (bool);
        * ``token_ttl`` (``seconds``), ``revoke_tokens``, ``expired_answer`` (``http``:
          HTTP 401 + ``INVALID_TOKEN``; ``envelope``: HTTP 200 with the code).
        """
        op = params.get("op")
        if op == "refuse":
            ids = [str(i) for i in params.get("ids") or []]
            share = float(params.get("share") or 0)
            self.refusal = {
                "ids": set(ids),
                "share": share,
                "code": str(params.get("code") or "INVALID_PARAMETER"),
                "detail": str(params.get("detail") or "The ticket cannot take this status"),
            }
            if not ids and share <= 0:
                self.refusal = None
            return {"op": op, "ids": sorted(ids), "share": share}
        if op == "tickets":
            for tid in params.get("ids") or []:
                self.tickets.setdefault(
                    str(tid), TicketRow(str(tid), "Printed", None, None, None, None, self.now())
                )
            if "accept_unknown" in params:
                self.accept_unknown = bool(params["accept_unknown"])
            return {"op": op, "tickets": len(self.tickets), "accept_unknown": self.accept_unknown}
        if op == "token_ttl":
            self.token_ttl_s = float(params["seconds"])
            return {"op": op, "token_ttl_s": self.token_ttl_s}
        if op == "revoke_tokens":
            revoked = len(self.tokens)
            self.tokens.clear()
            return {"op": op, "revoked": revoked}
        if op == "expired_answer":
            self.expired_answer = "envelope" if params.get("as") == "envelope" else "http"
            return {"op": op, "as": self.expired_answer}
        return {
            "error": f"unknown op {op!r}",
            "ops": ["refuse", "tickets", "token_ttl", "revoke_tokens", "expired_answer"],
        }

    def dump(self) -> dict[str, Any]:
        emails = Counter(c.email.casefold() for c in self.contacts.values())
        return {
            "tickets": [asdict(t) for t in self.tickets.values()],
            "contacts": [asdict(c) for c in self.contacts.values()],
            "contacts_created": sum(1 for c in self.contacts.values() if c.cultural),
            "duplicate_emails": sorted(e for e, n in emails.items() if n > 1),
            "accept_unknown_tickets": self.accept_unknown,
            "refusal": None
            if self.refusal is None
            else {**self.refusal, "ids": sorted(self.refusal["ids"])},
        }
