"""``ticketbridge links SYNC``: each ticket of a sync with its pass URL, from the ledger.

The ledger keeps, per record, the ids the destination acknowledged (``dest_ids``); the
Wallet destination stores there the adaptive link's id and URLs. Listing them needs no call
to the destination. Install status comes from Wallet's install and uninstall callbacks, which
``ticketbridge serve`` records per pass (``StateStore.get_pass_installs``): ``installed
(ios)``, ``installed (ios, android)``, ``uninstalled (android)``, or empty while Wallet has
reported nothing for the ticket's passes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from ticketbridge.engine.state.base import LedgerRow, PassInstall, StateStore

FIELDS = [
    "key",
    "ticket",
    "event",
    "url",
    "ios_url",
    "android_url",
    "install_status",
    "outcome",
    "updated_at",
]


def link_rows(
    store: StateStore, sync: str, wallet_project: str | None = None, batch: int = 500
) -> Iterator[dict[str, str]]:
    """One row per ledger entry of ``sync`` (key order), with the :data:`FIELDS`; the install
    status of its passes in the Wallet project ``wallet_project`` (looked up ``batch`` tickets
    at a time, so memory stays bounded)."""
    rows: list[LedgerRow] = []
    for row in store.iter_ledger(sync):
        rows.append(row)
        if len(rows) >= batch:
            yield from _rows(store, rows, wallet_project)
            rows = []
    yield from _rows(store, rows, wallet_project)


def _rows(
    store: StateStore, rows: list[LedgerRow], wallet_project: str | None
) -> Iterator[dict[str, str]]:
    installs: dict[str, list[PassInstall]] = {}
    if wallet_project is not None and rows:
        ids = [r.dest_ids["link_external"] for r in rows if r.dest_ids.get("link_external")]
        installs = store.get_pass_installs(wallet_project, ids)
    for row in rows:
        yield _row(row, installs.get(row.dest_ids.get("link_external", ""), []))


def install_status(reports: list[PassInstall]) -> str:
    """``installed (ios, android)``; with passes in both states ``installed (ios),
    uninstalled (android)``; empty with no report. A pass is named by the platform Wallet
    reported, else by its template."""
    parts = []
    for status in ("installed", "uninstalled"):
        names = sorted(
            r.platform or f"template {r.template_id}" for r in reports if r.status == status
        )
        if names:
            parts.append(f"{status} ({', '.join(names)})")
    return ", ".join(parts)


def _row(row: LedgerRow, installs: list[PassInstall]) -> dict[str, str]:
    ids = row.dest_ids
    return {
        "key": row.key,
        "ticket": ids.get("link_external", ""),
        "event": ids.get("event", ""),
        "url": ids.get("url", ""),
        "ios_url": ids.get("ios_url", ""),
        "android_url": ids.get("android_url", ""),
        "install_status": install_status(installs),
        "outcome": row.last_outcome,
        "updated_at": row.updated_at.isoformat() if row.updated_at else "",
    }


def write_csv(rows: Iterator[dict[str, str]], fh: TextIO) -> int:
    writer = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for row in rows:
        writer.writerow(row)
        n += 1
    return n
