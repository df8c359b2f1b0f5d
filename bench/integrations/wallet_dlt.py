"""TicketCo -> Airship Wallet in dlt, every dlt setting at its default.

* ``dlt.sources.rest_api`` reads ``/events`` and, as a dependent resource,
  ``/item_grosses?event_id=`` (page numbers until an empty page, ``per_page`` as for the other
  contenders), the event's fields carried on each item (``include_from_parent``).
* ``calls`` is a ``@dlt.transformer`` turning each page into the Wallet requests ticketbridge
  sends (``bench.integrations.wallet_body``): the event create before the event's first
  attendees, then its attendees 100 per adaptive-link request.
* ``wallet`` is a ``@dlt.destination(batch_size=500)`` sink sending them with dlt's retrying
  ``requests`` helper, in order, one at a time.

dlt keeps no per-record state of what the destination acknowledged: every run sends every
event and every ticket again. On a rerun an event create answered 400 (the external id exists)
is followed by an update of the event by external id, and an attendee answered 400 by updates
of its passes by external id, one per template. Telemetry is off: nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from bench.integrations import wallet_body as body
from bench.integrations.wallet_raw import wallet_headers

# The event's fields the requests need, carried from the events list on each item gross.
EVENT_FIELDS = (
    "id",
    "title",
    "location_name",
    "street_address",
    "start_at",
    "end_at",
    "doors_open_at",
    "status",
)


@dataclass
class _Event:
    """One event's attendees so far (its pages may interleave with other events')."""

    event: dict[str, Any] | None = None
    positions: body.Positions = field(default_factory=body.Positions)
    waiting: list[dict[str, Any]] = field(default_factory=list)
    created: bool = False
    unusable: bool = False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.integrations.wallet_dlt")
    parser.add_argument("--ticketco", required=True, help="TicketCo sandbox origin")
    parser.add_argument("--wallet", required=True, help="Airship Wallet sandbox origin")
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    os.environ.update({"RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"})

    import dlt
    from dlt.sources.helpers import requests
    from dlt.sources.rest_api import rest_api_resources

    token = os.environ["TICKETCO_TOKEN"]
    headers = {
        **wallet_headers(os.environ["AIRSHIP_WALLET_SECRET"]),
        "Content-Type": "application/json",
    }
    api = f"{args.wallet}/v1"
    counts = {
        "event_creates": 0,
        "event_updates": 0,
        "link_requests": 0,
        "pass_updates": 0,
        "failed": 0,
    }
    lock = threading.Lock()

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
                    "include_from_parent": list(EVENT_FIELDS),
                    "endpoint": {
                        "path": "item_grosses",
                        "data_selector": "item_grosses",
                        "params": {"event_id": "{resources.events.id}"},
                    },
                },
            ],
        }
    )

    state: dict[str, _Event] = {}

    def request(kind: str, path: str, payload: dict[str, Any], event: Any = "") -> dict[str, Any]:
        return {"kind": kind, "path": path, "body": json.dumps(payload), "event": event}

    def flush(ev: _Event, size: int) -> list[dict[str, Any]]:
        """The event's create (once) and the link requests of its waiting attendees, full
        batches only unless ``size`` is 1 (the event's last page)."""
        out: list[dict[str, Any]] = []
        if ev.event is None or ev.unusable or not ev.waiting:
            return out
        if not ev.created:
            try:
                fields = body.event_fields(ev.event)
            except body.Unusable:  # ticketbridge refuses every ticket of such an event
                ev.unusable = True
                ev.waiting.clear()
                return out
            out.append(request("event", *body.event_create(ev.event, fields), json.dumps(ev.event)))
            ev.created = True
        while len(ev.waiting) >= size or (size == 1 and ev.waiting):
            batch, ev.waiting = (
                ev.waiting[: body.LINKS_PER_REQUEST],
                ev.waiting[body.LINKS_PER_REQUEST :],
            )
            out.append(request("links", *body.links_request(ev.event, batch)))
        return out

    # Not a generator: dlt may interleave generators of consecutive pages, and an event's
    # waiting attendees must be settled page by page. The REST API source passes on the empty
    # page that ends each event's pagination; its request names the event.
    @dlt.transformer(name="calls", data_from=item_grosses, max_table_nesting=0)
    def calls(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
        event_id = str(page.request.params["event_id"])  # type: ignore[attr-defined]
        ev = state.setdefault(event_id, _Event())
        for item in page:
            if ev.event is None:
                ev.event = {f: item.get(f"_events_{f}") for f in EVENT_FIELDS}
            raw = {k: v for k, v in item.items() if not k.startswith("_events_")}
            attendee = ev.positions.attendee(ev.event, raw)
            if attendee is not None:
                ev.waiting.append(attendee)
        if not page:  # the event's last page: everything left goes
            return flush(state.pop(event_id), 1)
        return flush(ev, body.LINKS_PER_REQUEST)

    def send(method: str, path: str, payload: str) -> Any:
        """The answer, whatever its status (the helper raises on 4xx after its retries)."""
        try:
            return requests.request(method, f"{api}/{path}", data=payload, headers=headers)
        except requests.HTTPError as exc:
            return exc.response

    @dlt.destination(batch_size=args.batch_size, name="airship_wallet", max_table_nesting=0)
    def wallet(rows: Any, table: Any) -> None:
        for row in rows:
            if row["kind"] == "event":
                answer = send("POST", row["path"], row["body"])
                done = "event_creates"
                if answer.status_code == 400:  # the external id exists: a rerun
                    with lock:
                        counts[done] += 1
                    event = json.loads(row["event"])
                    path, payload = body.event_update(event, json.loads(row["body"])["fields"])
                    answer = send("PUT", path, json.dumps(payload))
                    done = "event_updates"
            else:
                answer = send("POST", row["path"], row["body"])
                done = "link_requests"
                if answer.ok:
                    batch = json.loads(row["body"])["payload"]["events"][0]["attendees"]
                    for path, payload in body.pass_updates(batch, answer.json()):
                        updated = send("PUT", path, json.dumps(payload))
                        with lock:
                            counts["pass_updates" if updated.ok else "failed"] += 1
            with lock:
                counts[done if answer.ok else "failed"] += 1

    pipeline = dlt.pipeline(
        pipeline_name="bench_ticketco_wallet",
        destination=wallet,
        pipelines_dir=args.pipelines_dir,
        dataset_name="bench",
    )
    info = pipeline.run(calls)
    failed = info.has_failed_jobs or counts["failed"] > 0
    print(json.dumps({**counts, "failed_jobs": info.has_failed_jobs}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
