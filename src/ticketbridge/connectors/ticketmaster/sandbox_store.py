"""Seeded data of the Ticketmaster sandbox: one market's customers and their orders.

Deterministic: the same ``seed``, ``records`` and ``today`` give the same payloads, byte for
byte (Faker runs once per seed for small name pools; everything else comes from one
``random.Random``). Payload shapes are the [INFER] shapes of ``schemas.py``.

What the data exercises: ~60% of customers consent to e-mail marketing, some only to SMS,
some to neither, some never answered; Danish mobiles in every common spelling (``+45 12 34
56 78``, ``12345678``, ``004512345678``, a bare JSON number), some missing or malformed; a few
malformed e-mails; nested ``cards`` and ``address`` objects; birth dates in a configurable
format; 0-3 orders per customer (COMPLETED / REFUNDED / CANCELLED) with seated and standing
tickets in DKK; ``updated_at`` spread over the two years before ``today``.
"""

from __future__ import annotations

import random
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Europe/Copenhagen")
_CUSTOMER_BASE = 2_000_001
_ORDER_BASE = 70_000_001
_DOMAINS = ["gmail.com", "hotmail.com", "outlook.dk", "live.dk", "mail.dk", "yahoo.dk"]
# Fictional venues in real Danish towns: (id, name, street, postal code, city)
VENUES = [
    ("KovZ917A001", "Havnehallen", "Havnegade 12", "1058", "København K"),
    ("KovZ917A002", "Nordlys Arena", "Arenavej 3", "9000", "Aalborg"),
    ("KovZ917A003", "Byens Koncertsal", "Koncertpladsen 1", "8000", "Aarhus C"),
    ("KovZ917A004", "Kulturværftet Scene", "Værftsvej 7", "5000", "Odense C"),
    ("KovZ917A005", "Fjordparken Stadion", "Stadionvej 40", "6700", "Esbjerg"),
    ("KovZ917A006", "Teatret ved Søerne", "Søvej 2", "7400", "Herning"),
]
_SHOWS = [
    "{a} Live",
    "{a} - Nordic Tour",
    "{a} & Venner",
    "Comedy: {a}",
    "{a} Unplugged",
    "Musical: {t}",
    "{t} - Familieforestilling",
    "Jazzaften med {a}",
]
_TITLES = ["Skatteøen", "Snedronningen", "Sommernat", "Nattevagten", "Byens Lys", "Havfruen"]
# (ticket type, price factor); "Ståplads" sections have no row or seat
_TYPES = [
    ("Voksen", 1.0),
    ("Voksen", 1.0),
    ("Voksen", 1.0),
    ("Barn", 0.5),
    ("Pensionist", 0.75),
    ("VIP", 2.0),
]
_SECTIONS = ["Parket A", "Parket B", "Balkon", "Tribune Nord", "Ståplads"]
# The entrance printed on seated tickets [INFER]; standing tickets name none.
_GATES = {"Parket A": "Indgang 1", "Parket B": "Indgang 1", "Balkon": "Indgang 2"}
_TICKET_KEYS = ("seat", "row", "section", "gate", "status")
_CHANNELS = ["web", "web", "web", "app", "app", "box_office", "phone"]
_BAD_EMAILS = ["{l}@", "{l}.{d}", "{l}@@{d}", "{f} {l}@{d}"]
_BAD_MOBILES = ["1234", "+45 12 34", "ring efter kl. 17", "+45 1234 5678 90"]


@lru_cache(maxsize=8)
def _pools(seed: int) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    from faker import Faker  # imported here: only sandboxes need Faker

    fake = Faker("da_DK")
    fake.seed_instance(seed)
    firsts = tuple(fake.first_name() for _ in range(200))
    lasts = tuple(fake.last_name() for _ in range(200))
    streets = tuple(fake.street_name() for _ in range(100))
    return firsts, lasts, streets


def _ascii(name: str) -> str:
    name = name.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain if ch.isalnum())


def stamp(value: datetime) -> str:
    """How the API spells every timestamp: UTC, whole seconds, ``Z``."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    span = max(0, int((hi - lo).total_seconds()))
    return lo + timedelta(seconds=rng.randint(0, span))


def _count(share: Any, n: int) -> int:
    value = float(share or 0)
    return 0 if value <= 0 or n == 0 else min(n, max(1, round(value * n)))


class _Index:
    """Records of one kind sorted by ``(updated_at, id)``, for ``[since, until)`` pages."""

    def __init__(self) -> None:
        self.keys: list[tuple[datetime, Any]] = []
        self.dirty = True

    def rebuild(self, records: dict[Any, dict[str, Any]]) -> None:
        self.keys = sorted((parse(r["updated_at"]), rid) for rid, r in records.items())
        self.dirty = False

    def span(self, since: datetime | None, until: datetime | None) -> tuple[int, int]:
        lo = 0 if since is None else bisect_left(self.keys, (since,))
        hi = len(self.keys) if until is None else bisect_left(self.keys, (until,))
        return lo, max(lo, hi)


class TicketmasterStore:
    """The seeded market plus what mutations changed. ``reset()`` rebuilds the seed."""

    def __init__(
        self,
        *,
        seed: int,
        records: int,
        today: datetime | None,
        market: str,
        birth_date_format: str,
    ) -> None:
        self.seed, self.records, self.market = seed, max(0, records), market.upper()
        self.birth_date_format = birth_date_format
        anchor = today or datetime.now(UTC)
        anchor = anchor.replace(tzinfo=UTC) if anchor.tzinfo is None else anchor
        self.today = anchor.astimezone(UTC).replace(microsecond=0)
        self.firsts, self.lasts, self.streets = _pools(seed)
        self.reset()

    # -- seeding -------------------------------------------------------------------------

    def reset(self) -> None:
        rng = random.Random(self.seed)
        self.customers: dict[int, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self._customer_index, self._order_index = _Index(), _Index()
        self.mutations = 0
        self.events = self._events(rng)
        self._starts = [parse(e["dates"]["start"]["dateTime"]) for e in self.events]
        newest = self.today - timedelta(minutes=1)  # seeded data is strictly in the past
        for n in range(self.records):
            updated = _between(rng, self.today - timedelta(days=730), newest)
            created = updated - timedelta(seconds=rng.randint(0, 900 * 86400))
            customer = self._customer(rng, _CUSTOMER_BASE + n, created, updated)
            self.customers[customer["id"]] = customer
            for _ in range(rng.choices((0, 1, 2, 3), (30, 35, 25, 10))[0]):
                self._add_order(rng, customer, _between(rng, created, newest), newest)

    def _events(self, rng: random.Random) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        count = max(12, min(240, self.records // 20))
        for n in range(count):
            start_local = (
                self.today.astimezone(ZONE) + timedelta(days=rng.randint(-730, 365))
            ).replace(hour=rng.choice((16, 18, 19, 20)), minute=rng.choice((0, 30)), second=0)
            vid, vname, street, postal, city = rng.choice(VENUES)
            artist = f"{rng.choice(self.firsts)} {rng.choice(self.lasts)}"
            name = rng.choice(_SHOWS).format(a=artist, t=rng.choice(_TITLES))
            out.append(
                {
                    "id": f"vvG1{n:04d}{rng.getrandbits(24):06X}",
                    "name": name,
                    "dates": {
                        "start": {
                            "localDate": start_local.date().isoformat(),
                            "localTime": start_local.time().isoformat(),
                            "dateTime": stamp(start_local),
                        },
                        "status": {"code": "onsale" if start_local > self.today else "offsale"},
                    },
                    "venue": {
                        "id": vid,
                        "name": vname,
                        "address": {"line1": street},
                        "postalCode": postal,
                        "city": {"name": city},
                        "country": {"countryCode": "DK"},
                    },
                    "_price": rng.choice((195, 245, 295, 345, 395, 495, 595, 795)),
                }
            )
        out.sort(key=lambda e: e["dates"]["start"]["dateTime"])
        return out

    def _email(self, rng: random.Random, first: str, last: str) -> str | None:
        local = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99) if rng.random() < 0.5 else ''}"
        domain = rng.choice(_DOMAINS)
        roll = rng.random()
        if roll < 0.03:
            return None
        if roll < 0.06:
            return rng.choice(_BAD_EMAILS).format(l=local, d=domain, f=_ascii(first))
        return f"{local}@{domain}" if roll > 0.1 else f"{local.title()}@{domain.upper()}"

    def _mobile(self, rng: random.Random) -> str | int | None:
        digits = f"{rng.choice('23456789')}{rng.randint(0, 9_999_999):07d}"
        a, b, c, d = digits[:2], digits[2:4], digits[4:6], digits[6:]
        roll = rng.random()
        if roll < 0.12:
            return None
        if roll < 0.14:
            return rng.choice(_BAD_MOBILES)
        if roll < 0.18:
            return int(digits)  # some exports give phone numbers as JSON numbers
        spellings = [
            f"+45 {a} {b} {c} {d}",
            digits,
            f"0045{digits}",
            f"+45{digits}",
            f"{a} {b} {c} {d}",
            f"0045 {digits}",
        ]
        return rng.choice(spellings)

    def _consent(
        self, rng: random.Random, created: datetime, updated: datetime
    ) -> dict[str, Any] | None:
        roll = rng.random()
        at = stamp(_between(rng, created, updated))
        if roll < 0.38:
            return {"email": True, "sms": True, "updated_at": at}
        if roll < 0.60:
            return {"email": True, "sms": False, "updated_at": at}
        if roll < 0.70:
            return {"email": False, "sms": True, "updated_at": at}
        if roll < 0.88:
            return {"email": False, "sms": False, "updated_at": at}
        if roll < 0.94:
            return {"email": None, "updated_at": at}  # asked about e-mail only, left blank
        return None  # never asked

    def _customer(
        self, rng: random.Random, cid: int, created: datetime, updated: datetime
    ) -> dict[str, Any]:
        first, last = rng.choice(self.firsts), rng.choice(self.lasts)
        customer: dict[str, Any] = {
            "id": cid,
            "first_name": first,
            "last_name": last,
            "email": self._email(rng, first, last),
            "mobile": self._mobile(rng),
        }
        if rng.random() < 0.8:
            born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 68 * 365))
            customer["birth_date"] = born.strftime(self.birth_date_format)
        customer["address"] = {
            "street": f"{rng.choice(self.streets)} {rng.randint(1, 120)}",
            "zip": f"{rng.randint(1000, 9990)}",
            "city": rng.choice(VENUES)[4],
            "country": "DK",
        }
        if rng.random() < 0.3:
            customer["cards"] = {
                "Cardnumber": rng.randint(10**9, 10**10 - 1),
                "Type": rng.choice(("Medlemskort", "Sæsonkort")),
            }
        consent = self._consent(rng, created, updated)
        if consent is not None:
            customer["marketing_consent"] = consent
        customer["created_at"], customer["updated_at"] = stamp(created), stamp(updated)
        return customer

    def _pick_event(self, rng: random.Random, bought: datetime) -> dict[str, Any]:
        """An event starting after the purchase, most often one of the next few."""
        later = self.events[bisect_right(self._starts, bought) :]
        soon = later[: max(1, len(later) // 3)] or self.events[-3:]
        return rng.choice(soon)

    def _add_order(
        self,
        rng: random.Random,
        customer: dict[str, Any],
        created: datetime,
        newest: datetime,
        status: str | None = None,
    ) -> dict[str, Any]:
        oid = str(_ORDER_BASE + len(self.orders))
        event = self._pick_event(rng, created)
        status = status or rng.choices(("COMPLETED", "REFUNDED", "CANCELLED"), (85, 8, 7))[0]
        updated = (
            created
            if status == "COMPLETED"
            else min(newest, created + timedelta(seconds=rng.randint(3600, 30 * 86400)))
        )
        section = rng.choice(_SECTIONS)
        row, seat = rng.randint(1, 30), rng.randint(1, 40)
        tickets = []
        for j in range(rng.choices((1, 2, 3, 4, 5, 6), (25, 40, 12, 15, 5, 3))[0]):
            kind, factor = rng.choice(_TYPES)
            seated = section != "Ståplads"
            tickets.append(
                {
                    "id": f"{oid}{j + 1:02d}",
                    "barcode": f"{rng.getrandbits(52):016d}",
                    "section": section,
                    "row": str(row) if seated else None,
                    "seat": str(seat + j) if seated else None,
                    **({"gate": _GATES[section]} if section in _GATES else {}),
                    "type": kind,
                    "price": round(event["_price"] * factor, 2),
                    "status": {"COMPLETED": "ISSUED"}.get(status, status),
                }
            )
        public_event = {k: v for k, v in event.items() if not k.startswith("_")}
        order = {
            "id": oid,
            "customer_id": customer["id"],
            "status": status,
            "created_at": stamp(created),
            "updated_at": stamp(updated),
            "channel": rng.choice(_CHANNELS),
            "currency": "DKK",
            "total": round(sum(t["price"] for t in tickets), 2),
            "event": public_event,
            "tickets": tickets,
        }
        self.orders[oid] = order
        self._order_index.dirty = True
        return order

    # -- queries ---------------------------------------------------------------------------

    def page(
        self, kind: str, since: datetime | None, until: datetime | None, page: int, size: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Records of ``kind`` updated in ``[since, until)``, ascending by (updated_at, id):
        page ``page`` of ``size``, and the total count."""
        records: dict[Any, dict[str, Any]] = self.customers if kind == "customers" else self.orders
        index = self._customer_index if kind == "customers" else self._order_index
        if index.dirty:
            index.rebuild(records)
        lo, hi = index.span(since, until)
        start = lo + page * size
        keys = index.keys[start : min(hi, start + size)]
        return [records[rid] for _, rid in keys], hi - lo

    def customer(self, cid: str) -> dict[str, Any] | None:
        try:
            return self.customers.get(int(cid))
        except ValueError:
            return None

    def ids(
        self, kind: str, since: datetime | None = None, until: datetime | None = None
    ) -> set[str]:
        """Ids (as strings) updated in ``[since, until)``: ground truth for tests."""
        records: dict[Any, dict[str, Any]] = self.customers if kind == "customers" else self.orders
        return {
            str(rid)
            for rid, r in records.items()
            if (since is None or parse(r["updated_at"]) >= since)
            and (until is None or parse(r["updated_at"]) < until)
        }

    # -- mutations -------------------------------------------------------------------------

    def _now(self) -> datetime:
        # Wall time (so a mutation is newer than any read that started before it), never
        # before the seeded "today".
        return max(datetime.now(UTC).replace(microsecond=0), self.today)

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Change customers (name, mobile, card), flip consents, add customers and orders,
        refund orders; everything touched gets ``updated_at`` = now. Returns the ids.

        ``{"op": "ticket", "ticket_id": ..., "seat": "12", ...}`` instead changes the fields
        of one ticket (seat, row, section, gate, status) and bumps its order."""
        if params.get("op") is not None:
            return self._op(params)
        rng = random.Random(f"{self.seed}:{params.get('seed', 1)}")
        self.mutations += 1
        now = self._now()
        at = stamp(now)
        ids = sorted(self.customers)
        changed = sorted(rng.sample(ids, _count(params.get("share", 0.05), len(ids))))
        for cid in changed:
            self._change(rng, self.customers[cid], at)
        taken = set(changed)
        rest = [c for c in ids if c not in taken]
        flipped = sorted(rng.sample(rest, _count(params.get("consent_flip_share", 0.0), len(rest))))
        for cid in flipped:
            c = self.customers[cid]
            old = c.get("marketing_consent") or {}
            c["marketing_consent"] = {**old, "email": not old.get("email"), "updated_at": at}
            c["updated_at"] = at
        new_customers = []
        for _ in range(int(params.get("new_customers", 0))):
            cid = max(self.customers, default=_CUSTOMER_BASE - 1) + 1
            self.customers[cid] = self._customer(rng, cid, now, now)
            new_customers.append(cid)
        all_ids = sorted(self.customers)
        new_orders = [
            self._add_order(rng, self.customers[rng.choice(all_ids)], now, now, "COMPLETED")["id"]
            for _ in range(int(params.get("new_orders", 0)) if all_ids else 0)
        ]
        fresh = set(new_orders)
        refundable = sorted(
            o for o, v in self.orders.items() if v["status"] == "COMPLETED" and o not in fresh
        )
        refunded = sorted(
            rng.sample(refundable, min(len(refundable), int(params.get("refunds", 0))))
        )
        for oid in refunded:
            order = self.orders[oid]
            order["status"], order["updated_at"] = "REFUNDED", at
            for t in order["tickets"]:
                t["status"] = "REFUNDED"
        self._customer_index.dirty = self._order_index.dirty = True
        return {
            "changed": changed,
            "consent_flipped": flipped,
            "new_customers": new_customers,
            "new_orders": new_orders,
            "refunded": refunded,
            "updated_at": at,
        }

    def _op(self, params: dict[str, Any]) -> dict[str, Any]:
        if params["op"] != "ticket":
            return {"error": f"unknown op {params['op']!r}", "ops": ["ticket"]}
        wanted = str(params.get("ticket_id"))
        edit = {k: params[k] for k in _TICKET_KEYS if k in params}
        if not edit:
            return {"error": f"ticket op needs one of {_TICKET_KEYS}"}
        for order in self.orders.values():
            for ticket in order["tickets"]:
                if str(ticket.get("id")) == wanted:
                    ticket.update(edit)
                    order["updated_at"] = stamp(self._now())
                    self._order_index.dirty = True
                    self.mutations += 1
                    return {"op": "ticket", "order_id": order["id"], **ticket}
        return {"error": f"no ticket {wanted}"}

    def _change(self, rng: random.Random, c: dict[str, Any], at: str) -> None:
        what = rng.randrange(3)
        if what == 0:
            c["last_name"] = rng.choice(self.lasts)
        elif what == 1:
            c["mobile"] = self._mobile(rng) or f"+45 {rng.randint(20, 99)} 11 22 33"
        else:
            c["cards"] = {
                "Cardnumber": rng.randint(10**9, 10**10 - 1),
                "Type": rng.choice(("Medlemskort", "Sæsonkort")),
            }
        c["updated_at"] = at

    def dump(self) -> dict[str, Any]:
        consent: Counter[str] = Counter()
        for c in self.customers.values():
            mc = c.get("marketing_consent") or {}
            consent["email"] += mc.get("email") is True
            consent["sms"] += mc.get("sms") is True
            consent["neither"] += mc.get("email") is not True and mc.get("sms") is not True
            consent["never_asked"] += not mc
        latest = {
            kind: max((r["updated_at"] for r in records.values()), default=None)
            for kind, records in (("customers", self.customers), ("orders", self.orders))
        }
        return {
            "platform": "ticketmaster",
            "market": self.market,
            "seed": self.seed,
            "today": stamp(self.today),
            "mutations": self.mutations,
            "counts": {
                "customers": len(self.customers),
                "orders": len(self.orders),
                "events": len(self.events),
            },
            "consent": dict(consent),
            "orders_by_status": dict(Counter(o["status"] for o in self.orders.values())),
            "latest_updated_at": latest,
        }
