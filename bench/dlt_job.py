"""The same job in dlt: REST API source (TicketCo) -> transformer (bookings) -> sink (Airship).

* ``dlt.sources.rest_api`` reads ``/events`` and, as a dependent resource, ``/item_grosses`` per
  event (page numbers until an empty page, ``per_page`` as for the other contenders).
* ``bookings`` is a ``@dlt.transformer`` grouping item grosses by ``ref_number`` into the
  ``POST /v1/contact`` body that ticketbridge sends (``bench.airship_body``).
* ``airship`` is a ``@dlt.destination`` sink posting each body, with dlt's own requests helper
  (retries 429 / 5xx, honours ``Retry-After``).

``--variant defaults`` leaves every dlt setting at its default (the sink's ``batch_size`` is the
job's batch size, as for the others). ``--variant tuned`` applies dlt's performance guide:
parallelized extraction of the dependent resource in a thread pool, larger in-memory buffers,
file rotation so that normalize and load can work on several files at once, normalize worker
processes, and ``concurrency`` load workers (each load job posts its file's rows one by one, so
this is how many requests are in flight).

dlt keeps no per-record state of what the destination acknowledged: every run sends every
booking of the source again. Telemetry is switched off: nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from datetime import UTC, datetime
from typing import Any


def _settings(args: argparse.Namespace) -> dict[str, str]:
    env = {"RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"}
    if args.variant == "tuned":
        env.update(
            {
                "EXTRACT__WORKERS": str(args.concurrency),
                "DATA_WRITER__BUFFER_MAX_ITEMS": "20000",
                "EXTRACT__DATA_WRITER__FILE_MAX_ITEMS": "20000",
                "NORMALIZE__WORKERS": "2",
                "NORMALIZE__START_METHOD": "spawn",
                "NORMALIZE__DATA_WRITER__FILE_MAX_ITEMS": str(args.file_items),
                "LOAD__WORKERS": str(args.concurrency),
            }
        )
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dlt_job")
    parser.add_argument("--ticketco", required=True, help="TicketCo sandbox origin")
    parser.add_argument("--airship", required=True, help="Airship CRM sandbox origin")
    parser.add_argument("--variant", choices=["defaults", "tuned"], default="defaults")
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--file-items",
        type=int,
        default=2000,
        help="rows per normalized file (tuned): the unit of parallel load",
    )
    args = parser.parse_args(argv)
    os.environ.update(_settings(args))  # before dlt reads its configuration

    import dlt
    from dlt.sources.helpers import requests
    from dlt.sources.rest_api import rest_api_resources

    from bench.airship_body import bodies, unit_ids

    token, airship_token = os.environ["TICKETCO_TOKEN"], os.environ["AIRSHIP_TOKEN"]
    headers = {"Authorization": f"Bearer {airship_token}", "Content-Type": "application/json"}
    tuned = args.variant == "tuned"
    counts = {"read": 0, "unusable": 0, "posted": 0, "failed": 0}
    lock = threading.Lock()
    now = datetime.now(UTC)

    units_page = requests.get(
        f"{args.airship}/v1/account/units", params={"account_id": 1}, headers=headers
    )
    units_page.raise_for_status()
    units = unit_ids(units_page.json())

    event_fields = ["id", "location_name", "start_at", "end_at", "status", "tags"]
    _events, item_grosses = rest_api_resources(
        {
            "client": {
                "base_url": f"{args.ticketco}/api/public/v1/",
                "auth": {"type": "api_key", "name": "token", "api_key": token, "location": "query"},
                "paginator": {
                    "type": "page_number",
                    "base_page": 1,
                    "page_param": "page",
                    "total_path": None,
                    "stop_after_empty_page": True,
                },
            },
            "resource_defaults": {"endpoint": {"params": {"per_page": args.per_page}}},
            "resources": [
                {"name": "events", "endpoint": {"path": "events", "data_selector": "events"}},
                {
                    "name": "item_grosses",
                    "parallelized": tuned,
                    "include_from_parent": event_fields,
                    "endpoint": {
                        "path": "item_grosses",
                        "data_selector": "item_grosses",
                        "params": {"event_id": "{resources.events.id}"},
                    },
                },
            ],
        }
    )

    # A booking's items may straddle two pages of one event, so the last group of a page
    # waits for the event's next page. dlt interleaves the pages of several events (one stream
    # per page of the parent), hence one waiting group per event. The REST API source passes
    # on the empty page that ends each event's pagination; its request names the event.
    # Parallelized item grosses come one whole event per call.
    pending: dict[str, list[dict[str, Any]]] = {}

    def emit(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not items:
            return []
        event = {f: items[0].get(f"_events_{f}") for f in event_fields}
        out = []
        for ref, body in bodies(event, items, units, now):
            with lock:
                counts["read"] += 1
                counts["unusable"] += body is None
            if body is not None:
                out.append({"booking_reference": ref, "body": json.dumps(body)})
        return out

    # Not a generator: dlt may interleave generators of consecutive pages, and the waiting
    # group must be settled page by page.
    @dlt.transformer(name="bookings", data_from=item_grosses, max_table_nesting=0)
    def group_bookings(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if tuned:
            return emit(page)
        event_id = str(page.request.params["event_id"])  # type: ignore[attr-defined]
        items = pending.pop(event_id, []) + page
        if not page:
            return emit(items)
        tail = len(items)
        while tail > 0 and items[tail - 1].get("ref_number") == items[-1].get("ref_number"):
            tail -= 1
        pending[event_id] = items[tail:]
        return emit(items[:tail])

    @dlt.destination(batch_size=args.batch_size, name="airship_crm", max_table_nesting=0)
    def airship(rows: Any, table: Any) -> None:
        for row in rows:
            response = requests.post(
                f"{args.airship}/v1/contact", data=row["body"], headers=headers
            )
            with lock:
                counts["posted" if response.ok else "failed"] += 1

    pipeline = dlt.pipeline(
        pipeline_name="bench_ticketco_airship",
        destination=airship,
        pipelines_dir=args.pipelines_dir,
        dataset_name="bench",
    )
    info = pipeline.run(group_bookings)
    failed = info.has_failed_jobs
    print(json.dumps({**counts, "failed_jobs": failed}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
