"""In-memory state of the TicketCo sandbox: seeded events, bookings and customers.

Scale: benchmarks build a million bookings, so nothing is stored per booking but a few bytes
in ``array``s (customer, item count, purchase time, flags). Items, names, e-mails, phones and
barcodes are derived from the booking's index with a cheap integer hash, and dicts are
rendered only for the page being served. Mutations are overlays on top of the seeded arrays,
so ``reset()`` is clearing a few dicts.

Item-gross keys that platforms.md marks [INFER] (``price``, ``currency``, ``status``,
``sales_channel``, ``barcode``, ``row_name``, ``seat_name``, ``gate_name``, ``buyer_*``,
``holder_*``) and the event's ``doors_open_at`` [INFER] are the ones the connector's
``schemas.py`` reads first.
"""

from __future__ import annotations

import random
import unicodedata
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

SANDBOX_VENUES = ["Riverside Hall", "Bowl Arena", "Harbour Stage"]
TAGS = ["Golf", "Bowling", "Concert", "Comedy", "Family"]
ZONE = ZoneInfo("Europe/Oslo")
ADDRESSES = {
    "Riverside Hall": "Elvegata 12, 0150 Oslo",
    "Bowl Arena": "Fjordgata 3, 5003 Bergen",
    "Harbour Stage": "Bryggen 7, 7010 Trondheim",
}
_M64 = (1 << 64) - 1
_REF_BASE = 1_000_000
_CUSTOMER_BASE = 500_000
_CAPACITY = {"Riverside Hall": 900, "Bowl Arena": 240, "Harbour Stage": 700}
# (title, item_type_type, price in % of the event price, cumulative weight in %)
_TYPES = [
    ("Standard", "TicketType", 100, 70),
    ("Child", "TicketType", 50, 82),
    ("Senior", "TicketType", 70, 90),
    ("VIP", "TicketType", 200, 97),
    ("Season pass", "SeasonPassShadowType", 0, 100),
]
_TYPE_CUM = [t[3] for t in _TYPES]
_CHANNELS = ["web", "app", "box_office", "reseller"]
_ITEMS_CUM = [0.30, 0.65, 0.77, 0.90, 0.95]  # 1..6 items per booking
_DOMAINS = ["gmail.com", "online.no", "hotmail.com", "outlook.com", "yahoo.no", "icloud.com"]
_BAD_PHONES = ["+47 12", "ring meg", "0000", "tlf 4512", "+47 4123456789"]
_TITLES = {
    "Golf": ["Golf Simulator Open Bay", "Golf Night: Closest to the Pin", "Junior Golf Clinic"],
    "Bowling": ["Bowling Night", "Cosmic Bowling", "Bowling & Burger", "Bowling League"],
    "Concert": ["{l} Quartet Live", "{f} {l} in Concert", "Jazz Night with {f} {l}"],
    "Comedy": ["Stand-up: {f} {l}", "Comedy Club Open Mic", "{f} {l}: New Show"],
    "Family": ["Family Sunday", "Kids' Disco", "Magic Show for the Family", "Puppet Theatre"],
}
# flags per booking: bits 0-1 opt-in (0 absent, 1 true, 2 false), 2-3 channel, 4 cancelled,
# 5 cancelled as "refunded", 6 checked in, 7 last item cancelled (partial cancellation)
_CANCELLED, _REFUNDED, _CHECKED_IN, _PARTIAL = 16, 32, 64, 128
_STATES = ("sold", "cancelled", "refunded")
Item = tuple[int, int, int, int, int]  # id, type index, price (øre), state, added at (0: booking)


def _mix(x: int) -> int:
    """splitmix64: one cheap, well-spread 64-bit hash per derived value."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _ascii(name: str) -> str:
    name = name.lower().replace("æ", "ae").replace("ø", "o").replace("å", "a")
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain if ch.isalnum() or ch == "-")


@lru_cache(maxsize=8)
def _pools(seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Small seeded name pools; Faker runs once per seed, never per booking."""
    from faker import Faker  # imported here: only sandboxes need it

    fake = Faker("no_NO")
    fake.seed_instance(seed)
    firsts = tuple(fake.first_name() for _ in range(256))
    lasts = tuple(fake.last_name() for _ in range(256))
    return firsts, lasts


@dataclass
class _Event:
    id: int
    title: str
    tags: list[str]
    location: str  # as served: a few carry stray whitespace, as hand-typed names do
    venue: str
    start: datetime
    end: datetime
    price: int  # whole NOK
    day: int  # days from today
    first: int  # bookings [first, first + count)
    count: int
    capacity: int = 0


class TicketcoStore:
    """Seeded TicketCo data: events, bookings (ref_number groups of item grosses), customers."""

    def __init__(self, *, seed: int, records: int, today: datetime | None, page_size: int) -> None:
        self.seed, self.records, self.page_size = seed, max(0, records), max(1, page_size)
        anchor = today or datetime.now(UTC)
        self.today: date = (anchor.astimezone(ZONE) if anchor.tzinfo else anchor).date()
        # The sandbox's clock: an early-morning run, so yesterday is over and today is not.
        self.now = datetime.combine(self.today, time(6, 0), ZONE)
        self._salt = _mix(seed)
        self.firsts, self.lasts = _pools(seed)
        self._build()
        self.reset()

    # -- seeded state ---------------------------------------------------------------------

    def _build(self) -> None:
        rng = random.Random(self.seed)
        per_day = min(8, 2 + self.records // 20_000)
        specs = []
        for day in range(-60, 61):
            for _ in range(per_day):
                tag = rng.choice(TAGS)
                venue = (
                    "Bowl Arena"
                    if tag in ("Golf", "Bowling") and rng.random() < 0.8
                    else rng.choice(SANDBOX_VENUES)
                )
                start = datetime.combine(
                    self.today + timedelta(days=day),
                    time(rng.choice([10, 12, 14, 17, 18, 19, 20]), rng.choice([0, 30])),
                    ZONE,
                )
                end = start + timedelta(minutes=rng.choice([90, 120, 150, 180]))
                tags = [tag] + (
                    [rng.choice([t for t in TAGS if t != tag])] if rng.random() < 0.25 else []
                )
                title = rng.choice(_TITLES[tag]).format(
                    f=rng.choice(self.firsts), l=rng.choice(self.lasts)
                )
                location = venue + " " if venue == "Bowl Arena" and rng.random() < 0.05 else venue
                specs.append(
                    (
                        start,
                        title,
                        tags,
                        location,
                        venue,
                        end,
                        rng.choice([149, 199, 249, 299, 349, 399, 499, 599]),
                        day,
                    )
                )
        specs.sort(key=lambda s: s[0])
        ids = list(range(len(specs)))
        rng.shuffle(ids)  # ids follow creation order, not start order, as on the platform
        weights = [rng.uniform(0.3, 1.7) for _ in specs]
        counts = _apportion(self.records, weights)
        self.events: list[_Event] = []
        first = 0
        for k, (start, title, tags, location, venue, end, price, day) in enumerate(specs):
            self.events.append(
                _Event(
                    31001 + 2 * ids[k],
                    title,
                    tags,
                    location,
                    venue,
                    start,
                    end,
                    price,
                    day,
                    first,
                    counts[k],
                )
            )
            first += counts[k]
        self._by_id = {ev.id: ev for ev in self.events}
        self._firsts = [ev.first for ev in self.events]
        self.n_customers = max(1, self.records * 3 // 4)
        n = self.records
        self._cust, self._nitems = array("I", [0]) * n, array("B", [0]) * n
        self._booked, self._flags = array("q", [0]) * n, array("B", [0]) * n
        now_ts = int(self.now.timestamp())
        r = rng.random
        for ev in self.events:
            start_ts, past = int(ev.start.timestamp()), ev.end <= self.now
            for i in range(ev.first, ev.first + ev.count):
                self._cust[i] = int(r() * self.n_customers)
                self._nitems[i] = nitems = 1 + bisect_right(_ITEMS_CUM, r())
                lead = start_ts - now_ts + 600 if not past else 600
                self._booked[i] = start_ts - lead - int(r() * 45 * 86400)
                u, c = r(), r()
                flags = 1 if u < 0.45 else 2 if u < 0.80 else 0
                flags |= (0 if c < 0.70 else 1 if c < 0.85 else 2 if c < 0.95 else 3) << 2
                u = r()
                if u < 0.05:
                    flags |= _CANCELLED | (_REFUNDED if u < 0.025 else 0)
                elif nitems > 1 and u < 0.08:
                    flags |= _PARTIAL
                if past and not flags & _CANCELLED and r() < 0.88:
                    flags |= _CHECKED_IN
                self._flags[i] = flags
        for ev in self.events:
            base = sum(self._nitems[ev.first : ev.first + ev.count])
            ev.capacity = max(_CAPACITY[ev.venue], -(-base * 115 // 100 // 50) * 50)

    def reset(self) -> None:
        self._override: dict[int, list[Item]] = {}
        self._cancelled: set[int] = set()
        self._opt_in: dict[int, int] = {}
        self._bad_stamp: set[int] = set()
        self._ended: set[int] = set()
        self._totals: dict[int, tuple[int, int]] = {}
        # ``op`` mutations of single records: item id -> item-gross keys served instead,
        # event id -> its start (and end, doors) moved to.
        self._item_edits: dict[int, dict[str, Any]] = {}
        self._starts: dict[int, datetime] = {}

    # -- derived records ----------------------------------------------------------------

    def ref(self, i: int) -> str:
        return str(_REF_BASE + i)

    def _event_of(self, i: int) -> _Event:
        return self.events[bisect_right(self._firsts, i) - 1]

    def start_of(self, ev: _Event) -> datetime:
        return self._starts.get(ev.id, ev.start)

    def status(self, ev: _Event) -> str:
        return "ended" if ev.day < -1 or ev.id in self._ended else "available"

    def _is_cancelled(self, i: int) -> bool:
        return bool(self._flags[i] & _CANCELLED) or i in self._cancelled

    def _opt(self, i: int) -> int:
        return self._opt_in.get(i, self._flags[i] & 3)

    def _n_items(self, i: int) -> int:
        found = self._override.get(i)
        return len(found) if found is not None else self._nitems[i]

    def items(self, i: int) -> list[Item]:
        """The booking's items with their own state (booking-level cancellation applies at
        render time, so it also covers items added by a mutation)."""
        found = self._override.get(i)
        if found is not None:
            return found
        n, price = self._nitems[i], self._event_of(i).price
        out = []
        for j in range(n):
            t = bisect_right(_TYPE_CUM, _mix(self._salt ^ (i << 4) ^ j) % 100)
            state = 1 if self._flags[i] & _PARTIAL and j == n - 1 else 0
            out.append(((_REF_BASE + i) * 10 + j, t, price * _TYPES[t][2], state, 0))
        return out

    def customer(self, c: int) -> tuple[str, str, str | None, str | None]:
        """First name, last name, e-mail, phone of customer ``c``: ~20% without a phone,
        ~3% bad e-mail, ~3% bad phone, ~2% with neither usable."""
        h = _mix(self._salt ^ 0x5EED ^ (c << 8))
        first, last = self.firsts[h % 256], self.lasts[(h >> 8) % 256]
        local = f"{_ascii(first)}.{_ascii(last)}{(h >> 16) % 100 or ''}"
        domain = _DOMAINS[(h >> 24) % len(_DOMAINS)]
        email: str | None = (
            f"{local.title()}@{domain.title()}" if (h >> 28) % 20 == 0 else f"{local}@{domain}"
        )
        num = f"{'49'[(h >> 33) & 1]}{(h >> 34) % 10_000_000:07d}"
        phone: str | None = [
            f"+47 {num[:3]} {num[3:5]} {num[5:]}",
            num,
            f"0047{num}",
            f"+46 70 {num[1:4]} {num[4:6]} {num[6:]}",
        ][(h >> 58) % 4]
        bad_email = [
            f"{local}@",
            f"{local}.{domain}",
            f"{local}@{_ascii(last)}@online.no",
            f"{_ascii(first)} {_ascii(last)}@{domain}",
        ][(h >> 60) % 4]
        bad_phone = _BAD_PHONES[(h >> 44) % len(_BAD_PHONES)]
        cat = (h >> 48) % 1000
        if cat < 20:  # neither usable
            email = bad_email if (h >> 62) & 1 else None
            phone = bad_phone if (h >> 63) & 1 else None
        elif cat < 40:
            email = bad_email
        elif cat < 60:
            phone = bad_phone
        elif cat < 250:
            phone = None
        return first, last, email, phone

    def _render(self, i: int, j: int, item: Item, ev: _Event, pii: bool) -> dict[str, Any]:
        item_id, t, price, state, added = item
        flags = self._flags[i]
        if self._is_cancelled(i):
            state = 2 if flags & _REFUNDED else 1
        h = _mix(self._salt ^ 0xB00C ^ i)
        stamp = datetime.fromtimestamp(added or self._booked[i], ZONE).strftime(
            "%Y-%m-%d %H:%M:%S"
        )  # naive local time [INFER]
        checked = flags & _CHECKED_IN and state == 0
        out: dict[str, Any] = {
            "id": item_id,
            "ref_number": self.ref(i),
            "event_id": ev.id,
            "event_name": ev.title,
            "transaction_datestamp": "31/02/2024 25:61" if i in self._bad_stamp else stamp,
            "item_type_id": ev.id * 10 + t,
            "item_type_title": _TYPES[t][0],
            "item_type_type": _TYPES[t][1],
            "capacity_name": "Ordinær",
        }
        if ev.venue == "Riverside Hall":
            out["section_name"] = "Parkett" if h % 5 else "Balkong"
            out["row_name"], out["seat_name"] = str(1 + (h >> 8) % 18), str(1 + (h >> 16) % 24 + j)
            out["gate_name"] = "Inngang " + ("AB"[(h >> 44) & 1] if h % 5 else "C")
        elif ev.venue == "Bowl Arena":
            out["section_name"] = ("Simulator " if "Golf" in ev.tags else "Bane ") + str(
                1 + (h >> 8) % 8
            )
        else:
            out["section_name"] = "Ståplass"
            out["gate_name"] = f"Port {1 + (h >> 44) % 3}"
        out.update(
            {
                "price": f"{price // 100}.{price % 100:02d}",
                "currency": "NOK",
                "status": _STATES[state],
                "sales_channel": _CHANNELS[(flags >> 2) & 3],
                "barcode": f"{_mix(self._salt ^ item_id) % 10**13:013d}",
                "checked_in_at": (ev.start - timedelta(seconds=(h >> 24) % 2700)).isoformat()
                if checked
                else None,
                "checked_out_at": None,
                "check_in_user_id": 101 + (h >> 40) % 4 if checked else None,
                "buyer_id": _CUSTOMER_BASE + self._cust[i],
            }
        )
        if self._item_edits and (edit := self._item_edits.get(item_id)) is not None:
            out.update(edit)
            if edit.get("status") in _STATES[1:]:
                out.update(checked_in_at=None, check_in_user_id=None)
        if pii:
            first, last, email, phone = self.customer(self._cust[i])
            out.update(
                buyer_first_name=first, buyer_last_name=last, buyer_email=email, buyer_phone=phone
            )
            if opt := self._opt(i):
                out["buyer_email_opt_in"] = opt == 1
            if j == 0:
                out.update(holder_first_name=first, holder_last_name=last, holder_email=email)
            else:
                hh = _mix(h ^ j)
                out.update(
                    holder_first_name=self.firsts[hh % 256],
                    holder_last_name=self.lasts[(hh >> 8) % 256],
                    holder_email=None,
                )
        return out

    def _total(self, ev: _Event) -> tuple[int, int]:
        """(items, active items) of the event, cached until the next mutation. Counted from
        the arrays, without deriving items: the events list asks for every event."""
        if ev.id not in self._totals:
            total = sold = 0
            for i in range(ev.first, ev.first + ev.count):
                found = self._override.get(i)
                n = len(found) if found is not None else self._nitems[i]
                total += n
                if not self._is_cancelled(i):
                    sold += (
                        sum(1 for it in found if it[3] == 0)
                        if found is not None
                        else n - (1 if self._flags[i] & _PARTIAL else 0)
                    )
            self._totals[ev.id] = (total, sold)
        return self._totals[ev.id]

    def item_page(self, events: list[_Event], page: int, size: int, pii: bool) -> list[Any]:
        """Items ``[(page-1)*size, page*size)`` of ``events`` in order, rendered."""
        skip, out = (page - 1) * size, []
        for ev in events:
            total = self._total(ev)[0]
            if skip >= total:
                skip -= total
                continue
            for i in range(ev.first, ev.first + ev.count):
                n = self._n_items(i)
                if skip >= n:
                    skip -= n
                    continue
                for j, item in enumerate(self.items(i)[skip:], start=skip):
                    out.append(self._render(i, j, item, ev, pii))
                    if len(out) == size:
                        return out
                skip = 0
        return out

    def event_json(self, ev: _Event) -> dict[str, Any]:
        sold = self._total(ev)[1]
        start = self.start_of(ev)
        slug = f"{ev.id}-{_ascii(ev.title.replace(' ', '-'))}"
        return {
            "id": ev.id,
            "title": ev.title,
            "description": f"{ev.title} at {ev.venue}.",
            "type": "Event",
            "status": self.status(ev),
            "start_at": start.isoformat(),
            "doors_open_at": (
                start - timedelta(minutes=30 if ev.venue == "Bowl Arena" else 60)
            ).isoformat(),
            "end_at": (ev.end + (start - ev.start)).isoformat(),
            "location_name": ev.location,
            "street_address": ADDRESSES[ev.venue],
            "tags": ev.tags,
            "event_minimum_price": ev.price / 2,
            "event_maximum_price": float(ev.price * 2),
            "total_capacities": ev.capacity,
            "total_sold": sold,
            "total_available": max(0, ev.capacity - sold),
            "locale_urls": {
                lang: f"https://ticketco.events/no/{lang}/e/{slug}" for lang in ("nb", "en", "sv")
            },
        }

    def customer_json(self, c: int) -> dict[str, Any]:
        first, last, email, phone = self.customer(c)
        created = self.now - timedelta(seconds=_mix(self._salt ^ c) % (700 * 86400))
        return {
            "id": _CUSTOMER_BASE + c,
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone,
            "created_at": created.isoformat(),
            "updated_at": created.isoformat(),
        }

    def event_by_id(self, event_id: str) -> _Event | None:
        return self._by_id.get(int(event_id)) if event_id.isdigit() else None

    # -- admin: mutate / dump -----------------------------------------------------------

    def mutate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Change, cancel, end yesterday's events and flip opt-ins; return the refs touched.

        Only future bookings are changed or cancelled (the past is settled); the lists
        returned are exactly what a reader will see differently afterwards.

        With ``op``, one record changes instead (see :meth:`_op`).
        """
        if params.get("op") is not None:
            return self._op(params)
        rng = random.Random(f"{self.seed}:{params.get('seed', 1)}")
        future = [
            i
            for ev in self.events
            if ev.day >= 0
            for i in range(ev.first, ev.first + ev.count)
            if not self._is_cancelled(i)
        ]
        changed = sorted(rng.sample(future, _count(params.get("share", 0.01), len(future))))
        for i in changed:
            self._change(i, rng)
        taken = set(changed)
        rest = [i for i in future if i not in taken]
        cancelled = sorted(rng.sample(rest, _count(params.get("cancel_share", 0.005), len(rest))))
        self._cancelled.update(cancelled)
        taken.update(cancelled)
        no_show: list[int] = []
        if params.get("no_shows", True):
            for ev in self.events:
                if ev.day == -1 and ev.id not in self._ended:
                    self._ended.add(ev.id)
                    no_show += [
                        i
                        for i in range(ev.first, ev.first + ev.count)
                        if not self._is_cancelled(i) and not self._flags[i] & _CHECKED_IN
                    ]
        explicit = [i for i in range(self.records) if self._opt(i)]
        flipped = sorted(
            rng.sample(explicit, _count(params.get("opt_in_flip_share", 0.0), len(explicit)))
        )
        for i in flipped:
            self._opt_in[i] = 3 - self._opt(i)
        rest = [i for i in future if i not in taken]
        bad = sorted(rng.sample(rest, _count(params.get("malformed_share", 0.0), len(rest))))
        self._bad_stamp.update(bad)
        self._totals.clear()
        return {
            "changed": [self.ref(i) for i in changed],
            "cancelled": [self.ref(i) for i in cancelled],
            "no_show": [self.ref(i) for i in no_show],
            "opt_in_flipped": [self.ref(i) for i in flipped],
            "malformed": [self.ref(i) for i in bad],
        }

    _ITEM_KEYS = ("seat_name", "row_name", "section_name", "gate_name", "status")

    def _op(self, params: dict[str, Any]) -> dict[str, Any]:
        """``{"op": "item", "item_id": N, "seat_name": "7", ...}`` overrides item-gross keys
        of one item (``status: cancelled`` also clears its check-in);
        ``{"op": "event_start", "event_id": N, "minutes": 90}`` moves one event (start, end
        and doors) by that many minutes."""
        op = params["op"]
        if op == "item":
            item_id = int(params["item_id"])
            edit = {k: params[k] for k in self._ITEM_KEYS if k in params}
            if not edit or (edit.get("status") is not None and edit["status"] not in _STATES):
                return {"error": f"item op needs one of {self._ITEM_KEYS}; status in {_STATES}"}
            self._item_edits.setdefault(item_id, {}).update(edit)
            self._totals.clear()
            return {"op": op, "item_id": item_id, **self._item_edits[item_id]}
        if op == "event_start":
            ev = self.event_by_id(str(params["event_id"]))
            if ev is None:
                return {"error": f"no event {params['event_id']}"}
            moved = self.start_of(ev) + timedelta(minutes=float(params["minutes"]))
            self._starts[ev.id] = moved
            return {"op": op, "event_id": ev.id, "start_at": moved.isoformat()}
        return {"error": f"unknown op {op!r}", "ops": ["item", "event_start"]}

    def _change(self, i: int, rng: random.Random) -> None:
        items = list(self.items(i))
        active = [k for k, it in enumerate(items) if it[3] == 0]
        kinds = ["add"] if len(items) < 8 else []
        kinds += ["remove"] if len(active) > 1 else []
        kinds += ["price"] if any(items[k][2] for k in active) else []
        kind = rng.choice(kinds or ["add"])
        if kind == "add":
            price = self._event_of(i).price * 100
            items.append(
                ((_REF_BASE + i) * 10 + len(items), 0, price, 0, int(self.now.timestamp()))
            )
        elif kind == "remove":
            k = active[-1]
            items[k] = (*items[k][:3], 2, items[k][4])  # refunded
        else:
            k = rng.choice([k for k in active if items[k][2]])
            old = items[k][2]
            new = max(100, old * rng.choice([80, 90, 110, 120]) // 10000 * 100)
            items[k] = (items[k][0], items[k][1], new if new != old else old + 1000, *items[k][3:])
        self._override[i] = items

    def dump(self) -> dict[str, Any]:
        cancelled = sum(1 for i in range(self.records) if self._is_cancelled(i))
        return {
            "platform": "ticketco",
            "seed": self.seed,
            "today": self.today.isoformat(),
            "counts": {
                "events": len(self.events),
                "bookings": self.records,
                "customers": self.n_customers,
                "cancelled": cancelled,
                "items": sum(self._total(ev)[0] for ev in self.events),
            },
            "venues": list(SANDBOX_VENUES),
            "events": [
                {
                    "id": ev.id,
                    "title": ev.title,
                    "location_name": ev.location,
                    "start_at": self.start_of(ev).isoformat(),
                    "status": self.status(ev),
                    "tags": ev.tags,
                    "bookings": ev.count,
                }
                for ev in self.events
            ],
        }


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` by ``weights`` into integers that add up exactly (largest remainder)."""
    if not weights:
        return []
    scale = total / sum(weights)
    raw = [w * scale for w in weights]
    counts = [int(x) for x in raw]
    by_rest = sorted(range(len(raw)), key=lambda k: (counts[k] - raw[k], k))
    for k in by_rest[: total - sum(counts)]:
        counts[k] += 1
    return counts


def _count(share: Any, n: int) -> int:
    share = float(share or 0)
    return 0 if share <= 0 or n == 0 else min(n, max(1, round(share * n)))
