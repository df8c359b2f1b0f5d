"""The SECUTIX 360 destination: object ``ticket_feedback`` (TIXNGO's feedback on tickets).

Invariants:

* Per ticket, one call of ``status_method`` stores the TIXNGO status as the ticket's
  external status with its mode, separate from the S-360 ticket status [DOC 7.5], and names
  the wallet owner and the beneficiary (the holder) by their contact numbers. Only what
  changed is sent (``Change.changed``); what is left out stays as it is at S-360.
* The owner and the holder are cultural contacts [DOC 7.3], matched by e-mail
  (case-insensitively): ``searchContact`` first, ``createCulturalContacts`` only for an
  address nobody has. Inside one write every address is looked up once, however many
  tickets name it; concurrent writes of one destination hold a lock per address, so a
  person is never created twice by this process. A create whose answer was lost is never
  re-sent blindly: the addresses are searched again first.
* The contact numbers (with the e-mail they were found for) are kept in ``dest_ids``, so an
  update whose person did not change needs no look-up.
* A person without an e-mail is not created (nothing to match on): the ticket's status is
  still stored and that person left as it is (``person_without_email: skip``, the default),
  or the ticket is refused (``reject``).
* A record refused by S-360 (a ``reject`` status code, e.g. an unknown ticket) is its
  ``Outcome(ok=False)`` with the ``statusDetail``; auth, fatal and retryable errors
  propagate to the engine.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ticketbridge.connectors.base import (
    Change,
    CheckResult,
    Mapped,
    ObjectOptions,
    ObjectSpec,
    Outcome,
    Record,
)
from ticketbridge.connectors.kit import DestinationKit, run_bounded
from ticketbridge.connectors.secutix360.client import Secutix360Client
from ticketbridge.connectors.secutix360.config import (
    PLATFORM,
    Secutix360Config,
    TicketFeedbackOptions,
)
from ticketbridge.connectors.secutix360.mapping import (
    HOLDER,
    OWNER,
    PEOPLE,
    TICKET,
    contact_body,
    prepare_ticket_feedback,
    ticket_body,
    ticket_id,
)
from ticketbridge.errors import AuthError, ConnectorError, RecordRejected, RetryableError
from ticketbridge.http import HttpContext

OBJECT = "ticket_feedback"

TICKET_FEEDBACK = ObjectSpec(
    name=OBJECT,
    accepts=("ticket",),
    entities=(TICKET, OWNER, HOLDER),
    default_policy={TICKET: "always", OWNER: "always", HOLDER: "always"},
    options=TicketFeedbackOptions,
    description="TIXNGO's mobile-ticket status stored as each ticket's external status with "
    "its mode; the wallet owner and the holder as cultural contacts (created once, matched "
    "by e-mail), the holder as the ticket's beneficiary.",
)

People = dict[str, dict[str, Any]]  # match (case-folded e-mail) -> person fields


class _KeyedLocks:
    """One lock per key, held for a set of keys at once (taken in sorted order, so two
    holders of overlapping sets cannot deadlock), and dropped when nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, keys: Iterable[str]) -> AsyncIterator[None]:
        ordered = sorted(set(keys))
        for key in ordered:
            lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        taken: list[asyncio.Lock] = []
        try:
            for key in ordered:
                lock = self._locks[key][0]
                await lock.acquire()
                taken.append(lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()
            for key in ordered:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class _ContactBook:
    """E-mail -> contact number: remembered (bounded), searched, or created once."""

    def __init__(self, client: Secutix360Client, cfg: Secutix360Config) -> None:
        self.client = client
        self.cfg = cfg
        self._known: OrderedDict[str, str] = OrderedDict()
        self._locks = _KeyedLocks()
        self.created = 0  # contacts this destination created (for logs and tests)

    def _remember(self, match: str, number: str) -> None:
        if self.cfg.contact_cache_size <= 0:
            return
        self._known[match] = number
        self._known.move_to_end(match)
        while len(self._known) > self.cfg.contact_cache_size:
            self._known.popitem(last=False)

    async def resolve(
        self, people: People, create_login: bool
    ) -> tuple[dict[str, str], dict[str, str]]:
        """``(numbers, refused)``, both by match: every person's contact number, or why
        S-360 refused to find or create them."""
        numbers: dict[str, str] = {}
        refused: dict[str, str] = {}
        async with self._locks.hold(people):
            todo = []
            for match in people:
                known = self._known.get(match)
                if known is None:
                    todo.append(match)
                else:
                    numbers[match] = known
            await self._search(todo, people, numbers, refused)
            new = [m for m in todo if m not in numbers and m not in refused]
            size = self.cfg.create_batch_size
            for start in range(0, len(new), size):
                chunk = new[start : start + size]
                await self._create(chunk, people, numbers, refused, create_login)
            for match in todo:
                if match in numbers:
                    self._remember(match, numbers[match])
        return numbers, refused

    async def _search(
        self, matches: list[str], people: People, numbers: dict[str, str], refused: dict[str, str]
    ) -> None:
        async def one(match: str) -> None:
            email = people[match]["email"]
            try:
                found = await self.client.search_contacts(email)
            except RecordRejected as exc:
                refused[match] = f"searchContact refused {email}: {exc.message}"
                return
            if found:
                # Several contacts with one address (made before us): the oldest, always.
                numbers[match] = min(found, key=_number_order).contact_number

        await run_bounded(matches, one, self.cfg.concurrency)

    async def _create(
        self,
        chunk: list[str],
        people: People,
        numbers: dict[str, str],
        refused: dict[str, str],
        create_login: bool,
    ) -> None:
        attempt = 0
        pending = chunk
        while pending:
            bodies = [contact_body(people[m], m, create_login) for m in pending]
            try:
                result = await self.client.create_cultural_contacts(bodies)
            except RecordRejected as exc:
                if len(pending) == 1:
                    email = people[pending[0]]["email"]
                    refused[pending[0]] = f"createCulturalContacts refused {email}: {exc.message}"
                    return
                # One bad contact refuses the call: each alone, searched again first in
                # case S-360 made some before refusing.
                for match in pending:
                    await self._search([match], people, numbers, refused)
                    if match not in numbers and match not in refused:
                        await self._create([match], people, numbers, refused, create_login)
                return
            except RetryableError as exc:
                if attempt >= self.cfg.max_retries:
                    raise
                await self.client.pause(attempt, exc)
                attempt += 1
                # The lost answer may have come from a create that happened.
                await self._search(pending, people, numbers, refused)
                pending = [m for m in pending if m not in numbers and m not in refused]
                continue
            made = dict(result.identifier_contact_map)
            for data in result.cultural_contact_data:
                ident, number = data.get("identifier"), data.get("contactNumber")
                if ident is not None and number is not None:
                    made.setdefault(str(ident), str(number))
            for match in pending:
                if match in made:
                    numbers[match] = made[match]
                    self.created += 1
                else:
                    email = people[match]["email"]
                    refused[match] = (
                        f"createCulturalContacts returned no contact number for {email} "
                        f"({result.status_detail or 'no statusDetail'})"
                    )
            return


def _number_order(contact: Any) -> tuple[int, str]:
    number = str(contact.contact_number)
    return (int(number), "") if number.isdigit() else (1 << 62, number)


class Secutix360Destination(DestinationKit[Secutix360Config]):
    platform = PLATFORM
    config_model = Secutix360Config
    OBJECTS = (TICKET_FEEDBACK,)
    client: Secutix360Client

    def __init__(
        self,
        config: Secutix360Config | Mapping[str, Any],
        context: HttpContext,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock  # read by open_client, which the kit calls from __init__
        super().__init__(config, context)
        self.contacts = _ContactBook(self.client, self.config)

    def open_client(self, config: Secutix360Config, context: HttpContext) -> Secutix360Client:
        return Secutix360Client(config, context, clock=self._clock)

    def prepare(self, obj: str, record: Record, options: ObjectOptions) -> Mapped:
        """Pure: see :func:`mapping.prepare_ticket_feedback`. Raises RecordRejected."""
        return prepare_ticket_feedback(
            record, self.object_options(obj, options, TicketFeedbackOptions)
        )

    async def write(self, obj: str, changes: list[Change], options: ObjectOptions) -> list[Outcome]:
        opts = self.object_options(obj, options, TicketFeedbackOptions)
        failed: dict[str, str] = {}
        ids: dict[str, dict[str, str]] = {c.key: dict(c.dest_ids) for c in changes}
        # Who each change names, and every address to look up, once per batch.
        wanted: dict[str, dict[str, str]] = {}  # change key -> role -> match
        people: People = {}
        for change in changes:
            roles = wanted.setdefault(change.key, {})
            for role in PEOPLE:
                person = change.fields.get(role) or {}
                match = person.get("match")
                if not match:
                    continue  # nobody, or nobody to match (person_without_email: skip)
                roles[role] = match
                known = ids[change.key]
                if known.get(f"{role}_email") != match or not known.get(f"{role}_contact"):
                    people.setdefault(match, person)
        numbers, refused = await self.contacts.resolve(people, opts.create_login)
        for change in changes:
            for role, match in wanted[change.key].items():
                if match in refused:
                    failed.setdefault(change.key, f"{change.key}: {role}: {refused[match]}")
                elif match in numbers:
                    ids[change.key].update(
                        {f"{role}_contact": numbers[match], f"{role}_email": match}
                    )
        todo = [c for c in changes if c.key not in failed]
        await run_bounded(
            todo, lambda c: self._store(c, wanted[c.key], ids, failed), self.config.concurrency
        )
        return [
            Outcome(c.key, ok=False, dest_ids=ids[c.key], reason=failed[c.key])
            if c.key in failed
            else Outcome(c.key, ok=True, dest_ids=ids[c.key])
            for c in changes
        ]

    async def _store(
        self,
        change: Change,
        roles: dict[str, str],
        ids: dict[str, dict[str, str]],
        failed: dict[str, str],
    ) -> None:
        ticket = ticket_id(change.record)
        contacts = {role: ids[change.key][f"{role}_contact"] for role in roles}
        fields = change.fields.get(TICKET, {})
        if not fields and not contacts:
            return  # only a person without an address changed: nothing S-360 can take
        body = ticket_body(ticket, fields, self.config.ticket_fields, contacts)
        try:
            await self.client.store_ticket(body)
        except RecordRejected as exc:
            failed[change.key] = f"{change.key}: S-360 refused ticket {ticket}: {exc.message}"
            return
        ids[change.key]["ticket"] = ticket

    # -- checks ------------------------------------------------------------------------

    async def check(self) -> list[CheckResult]:
        """Credentials accepted; the access-control and contact services answer."""
        cfg = self.config
        refused = [
            CheckResult("access control", False, "not checked: credentials refused"),
            CheckResult("contacts", False, "not checked: credentials refused"),
        ]
        try:
            await self.client.check_credentials()
            await self.client.access_control_catalog()
        except AuthError as exc:
            detail = f"S-360 refused the operator credentials ({cfg.auth}, HTTP {exc.status})"
            return [CheckResult("credentials", False, detail), *refused]
        except ConnectorError as exc:
            if self.client.bearer is not None and not self.client.bearer.fetches:
                return [CheckResult("credentials", False, exc.message), *refused]
            access = CheckResult("access control", False, exc.message)
        else:
            service = f"{cfg.access_control_service}/{cfg.access_control_version}"
            access = CheckResult("access control", True, f"{service} answers")
        results = [CheckResult("credentials", True, f"{cfg.auth} accepted"), access]
        try:
            await self.client.search_contacts("ticketbridge-check@example.invalid")
        except ConnectorError as exc:
            results.append(CheckResult("contacts", False, exc.message))
        else:
            service = f"{cfg.contact_service}/{cfg.contact_version}"
            results.append(CheckResult("contacts", True, f"{service} answers"))
        return results
