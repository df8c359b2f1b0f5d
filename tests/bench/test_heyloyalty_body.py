"""The benchmark's plain-Python Ticketmaster -> Heyloyalty mapping sends what ticketbridge's
connectors send: the same member upsert body, the same status after a create, the same
purchases, and the same customers left out (no consent, no usable e-mail).

The raw ceiling uses ``bench.integrations.heyloyalty_body``; if it drifted, the destination
would not do the same work for every contender and the comparison would lie.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from bench.integrations import heyloyalty_body as plain

from ticketbridge.connectors.base import Record
from ticketbridge.connectors.heyloyalty.config import STATUS, MembersOptions
from ticketbridge.connectors.heyloyalty.destination import _status_to_write
from ticketbridge.connectors.heyloyalty.mapping import MEMBER, PURCHASE, prepare_members
from ticketbridge.connectors.heyloyalty.mapping import tracking_rows as tb_rows
from ticketbridge.connectors.ticketmaster.mapping import MappingContext, map_customer, map_order
from ticketbridge.connectors.ticketmaster.sandbox_store import TicketmasterStore
from ticketbridge.demo import INTEGRATIONS
from ticketbridge.engine.spec import SyncSpec
from ticketbridge.errors import MappingError, RecordRejected

[DEMO] = [i for i in INTEGRATIONS if i.sync == "ticketmaster-customers-to-heyloyalty"]
SYNC = DEMO.config()
OPTIONS = MembersOptions.model_validate(
    {
        **{k: v for k, v in SYNC["destination"].items() if k not in ("connection", "object")},
        "match": SYNC["match"],
        "mapping": SYNC["mapping"],
    }
)
NOW = datetime.now(UTC)
CTX = MappingContext(market="DK", now=NOW, default_region="DK", date_format="%d-%m-%Y")


def _lacks_consent(record: Record) -> bool:
    # The engine's own rule, for the demo's setting (only ``require_consent`` is read).
    return SyncSpec.lacks_consent(SimpleNamespace(require_consent=SYNC["require_consent"]), record)  # type: ignore[arg-type]


def _member(raw: dict[str, Any]) -> tuple[bool, dict[str, Any] | None, dict[str, str]]:
    record = Record(key=f"c:{raw['id']}", kind="contact", data=map_customer(raw, CTX))
    try:
        fields = dict(prepare_members(record, OPTIONS, "DK")[MEMBER])
    except RecordRejected:
        return not _lacks_consent(record), None, {}
    consent = dict(fields.pop(STATUS, {}))
    status = _status_to_write(consent, fields, created=True, found=None)
    return not _lacks_consent(record), fields, status


def _rows(order: dict[str, Any], customer: dict[str, Any]) -> list[dict[str, Any]] | None:
    try:
        booking = map_order(order, customer, CTX)
        record = Record(key=f"o:{order['id']}", kind="booking", data=booking)
        purchase = prepare_members(record, OPTIONS, "DK")[PURCHASE]
    except (MappingError, RecordRejected):
        return None
    return tb_rows(purchase) if purchase else None


def test_members_and_purchases_match_ticketbridge_on_sandbox_data() -> None:
    store = TicketmasterStore(
        seed=5,
        records=2000,
        today=datetime(2026, 3, 1, tzinfo=UTC),
        market="DK",
        birth_date_format="%d-%m-%Y",
    )
    store.mutate({"share": 0.1, "consent_flip_share": 0.05, "refunds": 40, "seed": 3})
    sent = refused = silent = 0
    for raw in store.customers.values():
        consented, fields, status = _member(raw)
        assert plain.consented(raw) == consented, raw["id"]
        assert plain.member(raw) == fields, raw["id"]
        if fields is not None:
            assert plain.status_after_create(raw, fields) == status, raw["id"]
            assert plain.upsert_body(fields)["member"] == fields
        sent += consented and fields is not None
        refused += fields is None
        silent += not consented
    assert sent > 1000 and refused > 0 and silent > 0
    tracked = cancelled = 0
    for order in store.orders.values():
        customer = store.customers[order["customer_id"]]
        expected = _rows(order, customer)
        assert plain.tracking_rows(order, customer) == expected, order["id"]
        tracked += expected is not None
        cancelled += order["status"] != "COMPLETED"
    assert tracked > 1000 and cancelled > 0
