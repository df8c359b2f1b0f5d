"""In-memory state of the TIXNGO sandbox: one organizer's events, tickets and change log.

Every change to a ticket (seeding, injection, ``mutate``) appends one entry to the change log
and gives the ticket that sequence number. The diff feed serves, after a key, each ticket
whose latest change comes later, once, in change order, as it is now; the key it hands out
names the last change served, so a key always means the same place in the log ("stable") and
an empty page keeps the key it was asked with ("no news"). Keys are opaque strings.

The documented flow (platforms.md 6.5): INJECTED → DOWNLOADED → ASSIGNED (holder named) →
PENDING_TRANSFER → TRANSFERRED / FAILURE_TRANSFER → *_ACTIVATED → CONTROLLED, or
DELETION_PENDING → DELETED. A transfer gives the ticket a new wallet owner, who also becomes
its holder (``overlaySpectatorDetailsWithLastOwner``). In history mode the same tickets are
served with the legacy list's names (the mapping between the two lists is [INFER]).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import unicodedata
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

ORGANIZER = "admin@fc-sandbox.example"
ZONE = ZoneInfo("Europe/Zurich")
_ACTIVATED = ("ONLINE_ACTIVATED", "OFFLINE_ACTIVATED", "BT_ACTIVATED", "MANUAL_ACTIVATED")
# Lifecycle -> history names [INFER]: the legacy list has no ASSIGNED or failed transfer.
HISTORY_NAMES = {
    "DOWNLOADED": "RECEIVED",
    "ASSIGNED": "RECEIVED",
    "FAILURE_TRANSFER": "RECEIVED",
    "PENDING_TRANSFER": "TRANSFER_PENDING",
    **{a: "ACTIVATED" for a in _ACTIVATED},
}
# (next status, weight) per status: one step of the flow per mutation.
_NEXT: dict[str, list[tuple[str, float]]] = {
    "INJECTED": [("DOWNLOADED", 1.0)],
    "DOWNLOADED": [
        ("ASSIGNED", 0.4),
        ("PENDING_TRANSFER", 0.3),
        ("ONLINE_ACTIVATED", 0.2),
        ("DELETION_PENDING", 0.1),
    ],
    "ASSIGNED": [("PENDING_TRANSFER", 0.4), ("ONLINE_ACTIVATED", 0.4), ("BT_ACTIVATED", 0.2)],
    "PENDING_TRANSFER": [("TRANSFERRED", 0.8), ("FAILURE_TRANSFER", 0.2)],
    "FAILURE_TRANSFER": [("PENDING_TRANSFER", 0.5), ("OFFLINE_ACTIVATED", 0.5)],
    "TRANSFERRED": [("ONLINE_ACTIVATED", 0.7), ("PENDING_TRANSFER", 0.3)],
    **{a: [("CONTROLLED", 1.0)] for a in _ACTIVATED},
    "DELETION_PENDING": [("DELETED", 1.0)],
}
# Seeded states: (status, cumulative share).
_SEEDED = [
    ("INJECTED", 0.10),
    ("DOWNLOADED", 0.45),
    ("ASSIGNED", 0.62),
    ("PENDING_TRANSFER", 0.70),
    ("TRANSFERRED", 0.80),
    ("FAILURE_TRANSFER", 0.83),
    ("ONLINE_ACTIVATED", 0.93),
    ("CONTROLLED", 0.97),
    ("DELETED", 1.0),
]
_PREVIOUS = {
    "INJECTED": None,
    "DOWNLOADED": "INJECTED",
    "ASSIGNED": "DOWNLOADED",
    "PENDING_TRANSFER": "DOWNLOADED",
    "TRANSFERRED": "PENDING_TRANSFER",
    "FAILURE_TRANSFER": "PENDING_TRANSFER",
    "ONLINE_ACTIVATED": "ASSIGNED",
    "CONTROLLED": "ONLINE_ACTIVATED",
    "DELETED": "DELETION_PENDING",
}
_MATCHES = [
    ("Servette FC vs FC Basel", "Stade de Genève", "Lancy", "1213"),
    ("Lausanne-Sport vs BSC Young Boys", "Stade de la Tuilière", "Lausanne", "1018"),
    ("Servette FC vs FC Zürich", "Stade de Genève", "Lancy", "1213"),
    ("FC Sion vs Servette FC", "Stade de Tourbillon", "Sion", "1950"),
]
_DOMAINS = ["gmail.com", "bluewin.ch", "outlook.com", "sunrise.ch", "gmx.ch", "proton.me"]
_KEY_PREFIX = "tixngo-sandbox:"


@dataclass(frozen=True)
class Person:
    id: str | None
    email: str
    first: str
    last: str

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"email": self.email, "firstName": self.first, "lastName": self.last}
        return {"id": self.id, **out} if self.id else out


@dataclass
class Ticket:
    ticket_id: str
    event: int
    status: str
    previous: str | None
    owner: Person | None
    holder: Person | None
    assignee: Person | None
    seq: int = 0
    pending_to: Person | None = None  # the recipient of a transfer under way
    raw_status: str | None = None  # served instead of the status (op "edit"): bad input


def encode_key(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_KEY_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_key(key: str) -> int | None:
    """The change a key names, or None if it is not a key this sandbox handed out."""
    try:
        text = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not text.startswith(_KEY_PREFIX) or not text[len(_KEY_PREFIX) :].isdigit():
        return None
    return int(text[len(_KEY_PREFIX) :])


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name.lower()).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain if ch.isalnum() or ch == "-")


@lru_cache(maxsize=8)
def _pools(seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    from faker import Faker  # only sandboxes need it

    fake = Faker("fr_CH")
    fake.seed_instance(seed)
    return tuple(fake.first_name() for _ in range(200)), tuple(fake.last_name() for _ in range(200))


def account_id(email: str) -> str:
    """A TIXNGO user id that follows the e-mail: the same person is the same account."""
    return "u" + hashlib.blake2b(email.casefold().encode(), digest_size=5).hexdigest()


class TixngoStore:
    """Seeded TIXNGO data for one organizer; ``reset()`` rebuilds exactly the same."""

    def __init__(
        self, *, seed: int, records: int, today: datetime | None, mode: str = "lifecycle"
    ) -> None:
        if mode not in ("lifecycle", "history"):
            raise ValueError(f"mode must be lifecycle or history, not {mode!r}")
        self.seed, self.records, self.mode = seed, max(0, records), mode
        anchor = today or datetime.now(UTC)
        self.anchor = (anchor if anchor.tzinfo else anchor.replace(tzinfo=UTC)).astimezone(UTC)
        self.firsts, self.lasts = _pools(seed)
        self.reset()

    # -- seeded state ---------------------------------------------------------------------

    def reset(self) -> None:
        rng = random.Random(self.seed)
        day = self.anchor.astimezone(ZONE).date()
        n_events = 2 if self.records < 50 else len(_MATCHES)
        self.events = [
            {
                "id": f"EVT{k + 1}",
                "name": _MATCHES[k][0],
                "startTime": datetime.combine(
                    day + timedelta(days=7 * (k + 1)), time(20, 30), ZONE
                ).isoformat(),
                "address": {
                    "site": _MATCHES[k][1],
                    "city": _MATCHES[k][2],
                    "countryCode": "CH",
                    "zip": _MATCHES[k][3],
                },
            }
            for k in range(n_events)
        ]
        self.tickets: list[Ticket] = []
        self.by_id: dict[str, int] = {}
        self.log: list[int] = []  # change seq - 1 -> index of the ticket it changed
        self._people = 0
        self.recipients: list[Person] = []  # everyone a transfer went to, in order
        for i in range(self.records):
            buyer = self.person(rng)
            ticket = Ticket(f"S360-{i + 1:06d}", i % n_events, "INJECTED", None, None, buyer, None)
            u = rng.random()
            self._seed_state(ticket, next(s for s, cum in _SEEDED if u < cum), rng)
            self._append(ticket)
        self.seeded = len(self.log)

    def _seed_state(self, t: Ticket, status: str, rng: random.Random) -> None:
        buyer = t.holder
        t.status, t.previous = status, _PREVIOUS[status]
        if status == "INJECTED":
            return
        t.owner = replace(buyer, id=account_id(buyer.email)) if buyer else None
        if status == "ASSIGNED":
            t.assignee = t.holder = self.person(rng)
        elif status == "PENDING_TRANSFER":
            t.pending_to = self.person(rng)
        elif status == "TRANSFERRED":
            to = self.person(rng)
            self._take_over(t, to)
            self.recipients.append(to)

    def person(self, rng: random.Random) -> Person:
        """A new, unique person: ~4% with an upper-case address, as typed on phones."""
        self._people += 1
        first, last = rng.choice(self.firsts), rng.choice(self.lasts)
        local = f"{_ascii(first)}.{_ascii(last)}{self._people}"
        email = f"{local}@{rng.choice(_DOMAINS)}"
        if rng.random() < 0.04:
            email = email.title()
        return Person(None, email, first, last)

    @staticmethod
    def _take_over(t: Ticket, to: Person) -> None:
        """A completed transfer: the recipient owns the ticket and is its named holder."""
        t.owner = replace(to, id=account_id(to.email))
        t.holder, t.assignee, t.pending_to = replace(to, id=None), None, None

    def _append(self, t: Ticket) -> None:
        if t.ticket_id not in self.by_id:
            self.by_id[t.ticket_id] = len(self.tickets)
            self.tickets.append(t)
        self.log.append(self.by_id[t.ticket_id])
        t.seq = len(self.log)

    def stamp(self, seq: int) -> datetime:
        """When change ``seq`` happened: seeded ones a minute apart up to the anchor, later
        ones a second apart after it (deterministic, so reset gives the same data)."""
        if seq <= self.seeded:
            return self.anchor - timedelta(minutes=self.seeded - seq + 1)
        return self.anchor + timedelta(seconds=seq - self.seeded)

    # -- the diff feed --------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        return len(self.log)

    def diff(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """The tickets changed after change ``after`` (each once, as it is now), at most
        ``limit``, and the change the next key names."""
        out: list[dict[str, Any]] = []
        seq = after
        while seq < len(self.log) and len(out) < limit:
            seq += 1
            t = self.tickets[self.log[seq - 1]]
            if t.seq == seq:  # else a later change of this ticket comes further on
                out.append(self.render(t))
        return out, seq

    def render(self, t: Ticket) -> dict[str, Any]:
        status = t.raw_status or t.status
        previous = t.previous
        if self.mode == "history":
            status = HISTORY_NAMES.get(status, status)
            previous = HISTORY_NAMES.get(previous, previous) if previous else None
        return {
            "ticketId": t.ticket_id,
            "status": status,
            "previousStatus": previous,
            "updatedAt": self.stamp(t.seq).isoformat().replace("+00:00", "Z"),
            "owner": t.owner.json() if t.owner else None,
            "holder": t.holder.json() if t.holder else None,
            "assignee": t.assignee.json() if t.assignee else None,
            "event": self.events[t.event],
        }

    # -- changes --------------------------------------------------------------------------

    def step(self, t: Ticket, status: str, rng: random.Random, same_recipient: bool) -> str:
        """Move one ticket to ``status`` (one change); returns what happened to it."""
        t.previous, t.status, t.raw_status = t.status, status, None
        what = "changed"
        if status == "DOWNLOADED" and t.owner is None and t.holder is not None:
            t.owner = replace(t.holder, id=account_id(t.holder.email))
        elif status == "ASSIGNED":
            t.assignee = t.holder = self.person(rng)
        elif status == "PENDING_TRANSFER":
            reuse = same_recipient and self.recipients
            t.pending_to = rng.choice(self.recipients) if reuse else self.person(rng)
        elif status == "TRANSFERRED":
            to = t.pending_to or self.person(rng)
            what = "transferred_again_to" if to in self.recipients else "transferred"
            self._take_over(t, to)
            self.recipients.append(to)
        elif status == "FAILURE_TRANSFER":
            t.pending_to = None
        elif status == "DELETED":
            what = "deleted"
        self._append(t)
        return what

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Move ``share`` of the tickets that can move one step along the flow; with
        ``same_recipient_share``, that share of new transfers goes to someone who already
        received one. Returns the ticket ids changed, and among them those transferred (to a
        new recipient, or again to an earlier one) and deleted.

        With ``op``, one ticket changes instead (see :meth:`_op`)."""
        if params.get("op") is not None:
            return self._op(params)
        rng = random.Random(f"{self.seed}:{params.get('seed', 1)}:{self.last_seq}")
        movable = [t for t in self.tickets if t.status in _NEXT]
        share = float(params.get("share", 0.1))
        picked = rng.sample(movable, min(len(movable), round(share * len(movable))))
        again = float(params.get("same_recipient_share", 0.0))
        out: dict[str, list[str]] = {
            "changed": [],
            "transferred": [],
            "transferred_again_to": [],
            "deleted": [],
        }
        for t in sorted(picked, key=lambda t: t.ticket_id):
            options = _NEXT[t.status]
            status = rng.choices([s for s, _ in options], [w for _, w in options])[0]
            what = self.step(t, status, rng, rng.random() < again)
            out["changed"].append(t.ticket_id)
            if what != "changed":
                out[what].append(t.ticket_id)
        return out

    def _op(self, params: dict[str, Any]) -> dict[str, Any]:
        """One ticket (``ticket_id``):

        * ``{"op": "transfer", "to": {"email", "firstName", "lastName"}}`` transfers it
          (PENDING_TRANSFER, then TRANSFERRED: two changes, the feed shows the last);
        * ``{"op": "step", "status": S}`` moves it to S;
        * ``{"op": "edit", "status": "..."}`` serves that status text as it is (bad input).
        """
        t = self.tickets[self.by_id[str(params["ticket_id"])]]
        rng = random.Random(f"{self.seed}:op:{self.last_seq}")
        op = params["op"]
        if op == "transfer":
            to = params["to"]
            first, last = to.get("firstName", ""), to.get("lastName", "")
            t.pending_to = Person(None, to["email"], first, last)
            t.previous, t.status = t.status, "PENDING_TRANSFER"
            self._append(t)
            self.step(t, "TRANSFERRED", rng, False)
        elif op == "step":
            self.step(t, str(params["status"]), rng, False)
        elif op == "edit":
            t.raw_status = str(params["status"])
            self._append(t)
        else:
            raise ValueError(f"unknown op {op!r} (transfer, step, edit)")
        return {"changed": [t.ticket_id], "ticket": self.render(t)}

    def inject(self, entries: list[dict[str, Any]]) -> list[str]:
        """Tickets injected by ``POST /organizer/tickets`` (validated by the caller)."""
        for entry in entries:
            event = entry["event"]
            index = next((k for k, e in enumerate(self.events) if e["id"] == event["id"]), None)
            if index is None:
                self.events.append(
                    {k: event[k] for k in ("id", "name", "startTime", "address") if k in event}
                )
                index = len(self.events) - 1
            spectator = entry["spectatorDetails"]
            holder = Person(
                None,
                spectator.get("email", ""),
                spectator.get("firstName", ""),
                spectator.get("lastName", ""),
            )
            ticket_id = str(entry["ticketId"])
            ticket = Ticket(ticket_id, index, "INJECTED", None, None, holder, None)
            if ticket_id in self.by_id:
                ticket = self.tickets[self.by_id[ticket_id]]
                ticket.previous, ticket.status, ticket.holder = ticket.status, "INJECTED", holder
            self._append(ticket)
        return [str(e["ticketId"]) for e in entries]

    def dump(self) -> dict[str, Any]:
        return {
            "organizer": ORGANIZER,
            "mode": self.mode,
            "last_seq": self.last_seq,
            "events": self.events,
            "tickets": [{**self.render(t), "seq": t.seq} for t in self.tickets],
        }
