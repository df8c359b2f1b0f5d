"""``demo_sale`` end to end, and the reservation tables' migration (0002)."""

from __future__ import annotations

import httpx
import yaml
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect

from ticketbridge.engine.state.db import alembic_config, create_state_engine, migrate
from ticketbridge.engine.state.tables import metadata as state_metadata
from ticketbridge.http import HttpContext
from ticketbridge.supplier import SupplierApiConfig, demo_sale, reservations_metadata

from .support import KEY, TOUR, Harness

SUPPLIER_TABLES = {"supplier_reservations", "supplier_slot_locks"}


async def test_demo_sale_sells_and_cancels_through_the_api(harness: Harness) -> None:
    ctx = HttpContext()
    ctx.mount("http://supplier.test", httpx.ASGITransport(app=harness.app))
    summary = await demo_sale("http://supplier.test", KEY, ctx)
    assert summary["product"] == {"id": TOUR, "name": "Highlights tour", "use_timeslots": True}
    assert summary["booking_id"] == summary["acme_order_id"]
    assert sum(len(codes) for codes in summary["barcodes"].values()) == 2
    assert summary["cancellation"]["status"] == 204
    assert summary["cancellation"]["acme"].startswith("method=order_update;items=2;amount=")
    assert summary["second_cancellation"]["error_code"] == 3003
    order = harness.sandbox.store.dump()["orders"][0]
    assert order["id"] == summary["booking_id"]
    assert [i["quantity"] for i in order["items"]] == [0, 0]


def test_migration_0002_creates_exactly_the_reservation_tables(state_url: str) -> None:
    engine = create_state_engine(state_url)
    try:
        migrate(engine)
        assert set(inspect(engine).get_table_names()) >= SUPPLIER_TABLES
        combined = MetaData()
        for table in [*state_metadata.tables.values(), *reservations_metadata.tables.values()]:
            table.to_metadata(combined)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, combined) == []
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert context.get_current_revision() == head
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        assert SUPPLIER_TABLES.isdisjoint(inspect(engine).get_table_names())
        migrate(engine)
        assert set(inspect(engine).get_table_names()) >= SUPPLIER_TABLES
    finally:
        engine.dispose()


EXAMPLE = """
supplier_api:
  connection: acme
  host: 127.0.0.1
  port: 8480
  api_key: not-a-real-key
  environment: sandbox
  reservation_minutes: 20
  currency: EUR
  cancellation: order_update
  mappings:
    sandbox:
      organization_id: ORG-SANDBOX-1
      products:
        museum-entry:
          event_template_id: TPL-SANDBOX-1
          name: Museum entry
          use_timeslots: false
          variants:
            adult: {ticket_type_id: PT-SANDBOX-ADULT, name: Adult}
            child: {ticket_type_id: PT-SANDBOX-CHILD}
    production:
      organization_id: ORG-PROD-9
      products:
        museum-entry:
          event_template_id: TPL-PROD-9
          variants:
            adult: {ticket_type_id: PT-PROD-ADULT}
            child: {ticket_type_id: PT-PROD-CHILD}
"""


def test_the_documented_yaml_block_validates() -> None:
    block = yaml.safe_load(EXAMPLE)["supplier_api"]
    config = SupplierApiConfig.model_validate(block)
    assert config.mapping.organization_id == "ORG-SANDBOX-1"
    assert config.reservation_minutes == 20 and config.forbidden_body == "tiqets_message"
    production = SupplierApiConfig.model_validate({**block, "environment": "production"})
    assert production.mapping.products["museum-entry"].event_template_id == "TPL-PROD-9"
