"""Ticketmaster -> Heyloyalty in dlt, every dlt setting at its default.

* ``pages`` is a ``@dlt.resource`` reading the customers, then the orders, with dlt's
  retrying ``requests`` helper, ascending ``updated_at``, each query starting at the last stamp
  seen (Ticketmaster refuses pages past ``page * size >= 1000``, so the REST API source's page
  number paginator cannot read more than 1,000 records of a list).
* ``calls`` is a ``@dlt.transformer`` turning each page into the calls ticketbridge sends
  (``bench.integrations.heyloyalty_body``): a member upsert per consenting customer with a usable
  e-mail (with the status to set if it is created), and the purchases of those customers'
  completed orders, 200 orders per tracking import.
* ``heyloyalty`` is a ``@dlt.destination`` sink sending them.

dlt keeps no per-record state of what the destination acknowledged: every run sends every
member and re-imports every purchase. Telemetry is off: nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import threading
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

from bench.integrations import heyloyalty_body as body
from bench.integrations.heyloyalty_raw import TRACKING_BATCH
from ticketbridge.connectors.heyloyalty.config import (
    SANDBOX_API_KEY,
    SANDBOX_LIST_ID,
    SANDBOX_TRACKING_ID,
)
from ticketbridge.connectors.ticketmaster.sandbox import SANDBOX_USERNAME
from ticketbridge.http.auth import hmac_hex_b64


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.integrations.heyloyalty_dlt")
    parser.add_argument("--ticketmaster", required=True, help="Ticketmaster sandbox origin")
    parser.add_argument("--heyloyalty", required=True, help="Heyloyalty sandbox origin")
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--per-page", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    os.environ.update({"RUNTIME__DLTHUB_TELEMETRY": "false", "RUNTIME__LOG_LEVEL": "WARNING"})

    import dlt
    from dlt.sources.helpers import requests

    key, password = os.environ["TM_API_KEY"], os.environ["TM_PASSWORD"]
    secret = os.environ["HEYLOYALTY_API_SECRET"]
    tm_auth = base64.b64encode(f"{SANDBOX_USERNAME}:{password}".encode()).decode("ascii")
    api = f"{args.heyloyalty}/loyalty/v1/lists/{SANDBOX_LIST_ID}"
    counts = {"upserts": 0, "patches": 0, "imports": 0, "failed": 0}
    lock = threading.Lock()

    def signed() -> dict[str, str]:
        stamp = formatdate(usegmt=True)
        raw = f"{SANDBOX_API_KEY}:{hmac_hex_b64(secret, stamp)}".encode()
        return {
            "X-Request-Timestamp": stamp,
            "Authorization": "Basic " + base64.b64encode(raw).decode("ascii"),
            "Content-Type": "application/json",
        }

    def scan(kind: str) -> Iterator[list[dict[str, Any]]]:
        since: str | None = None
        seen: set[str] = set()
        page = 0
        while True:
            params: dict[str, Any] = {
                "apikey": key,
                "page": page,
                "size": args.per_page,
                "sort": "updated_at,asc",
            }
            if since:
                params["updated_since"] = since
            response = requests.get(
                f"{args.ticketmaster}/clientdata/v1/DK/{kind}",
                params=params,
                headers={"Authorization": f"Basic {tm_auth}"},
            )
            response.raise_for_status()
            listed = response.json()
            found, paging = listed[kind], listed["page"]
            fresh = [r for r in found if str(r["id"]) not in seen]
            if fresh:
                yield fresh
            # The last page of what is left from ``since`` (a group sharing one stamp may fill
            # the deep-paging limit exactly: asking for the page after it is refused).
            if len(found) < args.per_page or paging["number"] + 1 >= paging["totalPages"]:
                return
            last = found[-1]["updated_at"]
            if last != since:
                since, page = last, 0
                seen = {str(r["id"]) for r in found if r["updated_at"] == last}
            else:
                seen |= {str(r["id"]) for r in found}
                page += 1

    @dlt.resource(name="pages", max_table_nesting=0)
    def pages() -> Iterator[dict[str, Any]]:
        for kind in ("customers", "orders"):
            for chunk in scan(kind):
                yield {"kind": kind, "records": chunk}
        yield {"kind": "end", "records": []}  # the last, short tracking import

    customers: dict[str, dict[str, Any]] = {}
    pending: list[list[dict[str, Any]]] = []

    def imports(rows: list[list[dict[str, Any]]]) -> dict[str, Any]:
        return {"kind": "import", "body": json.dumps([r for order in rows for r in order])}

    # Not a generator: one page in, its calls out, in the order the pages come.
    @dlt.transformer(name="calls", data_from=pages, max_table_nesting=0)
    def calls(page: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        if page["kind"] == "customers":
            for c in page["records"]:
                customers[str(c["id"])] = c
                fields = body.member(c) if body.consented(c) else None
                if fields is not None:
                    status = body.status_after_create(c, fields)
                    out.append(
                        {
                            "kind": "member",
                            "body": json.dumps(body.upsert_body(fields)),
                            "status": json.dumps(status) if status else "",
                        }
                    )
            return out
        if page["kind"] == "end":
            if pending:
                out.append(imports(pending[:]))
                pending.clear()
            return out
        for o in page["records"]:
            customer = customers.get(str(o.get("customer_id")))
            if customer is None or not body.consented(customer):
                continue
            rows = body.tracking_rows(o, customer)
            if rows is not None:
                pending.append(rows)
        while len(pending) >= TRACKING_BATCH:
            out.append(imports(pending[:TRACKING_BATCH]))
            del pending[:TRACKING_BATCH]
        return out

    @dlt.destination(batch_size=args.batch_size, name="heyloyalty", max_table_nesting=0)
    def heyloyalty(rows: Any, table: Any) -> None:
        for row in rows:
            if row["kind"] == "member":
                response = requests.post(
                    f"{api}/members/upsert", data=row["body"], headers=signed()
                )
                done = "upserts"
                answer = response.json() if response.ok else {}
                if answer.get("type") == "create" and row["status"]:
                    patch = requests.patch(
                        f"{api}/members/{answer['member_id']}",
                        data=json.dumps({"status": json.loads(row["status"])}),
                        headers=signed(),
                    )
                    with lock:
                        counts["patches" if patch.ok else "failed"] += 1
            else:
                rows_body = {
                    "date_format": "iso8601",
                    "skip_header_line": False,
                    "rows": json.loads(row["body"]),
                }
                response = requests.post(
                    f"{args.heyloyalty}/tracking/api/transaction/import/{SANDBOX_TRACKING_ID}",
                    data=json.dumps(rows_body),
                    headers=signed(),
                )
                done = "imports"
            with lock:
                counts[done if response.ok else "failed"] += 1

    pipeline = dlt.pipeline(
        pipeline_name="bench_ticketmaster_heyloyalty",
        destination=heyloyalty,
        pipelines_dir=args.pipelines_dir,
        dataset_name="bench",
    )
    info = pipeline.run(calls)
    failed = info.has_failed_jobs
    print(json.dumps({**counts, "failed_jobs": failed}))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
