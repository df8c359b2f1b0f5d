"""``ticketbridge links SYNC``: each ticket of a sync with its pass URL, from the ledger.

The ledger keeps, per record, the ids the destination acknowledged (``dest_ids``); the
Wallet destination stores there the adaptive link's id and URLs. Listing them needs no call
to the destination. Install status is shown when something recorded it in the ledger
(``install_status``), empty otherwise: the ledger does not hear of installs by itself.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.table import Table

from ticketbridge import logs
from ticketbridge.engine.state.base import LedgerRow, StateStore
from ticketbridge.errors import ConfigError
from ticketbridge.project import load_project
from ticketbridge.runtime import Runtime

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


def link_rows(store: StateStore, sync: str) -> Iterator[dict[str, str]]:
    """One row per ledger entry of ``sync`` (key order), with the :data:`FIELDS`."""
    for row in store.iter_ledger(sync):
        yield _row(row)


def _row(row: LedgerRow) -> dict[str, str]:
    ids = row.dest_ids
    return {
        "key": row.key,
        "ticket": ids.get("link_external", ""),
        "event": ids.get("event", ""),
        "url": ids.get("url", ""),
        "ios_url": ids.get("ios_url", ""),
        "android_url": ids.get("android_url", ""),
        "install_status": ids.get("install_status", ""),
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


def links_command(
    sync: str,
    csv_path: Annotated[
        str | None, typer.Option("--csv", help="Write them to this CSV file ('-': stdout).")
    ] = None,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Project file.", envvar="TICKETBRIDGE_CONFIG")
    ] = Path("ticketbridge.yaml"),
) -> None:
    """List the sync's tickets with their pass URLs (and install status when known)."""
    err = Console(stderr=True)
    try:
        project = load_project(config)
        project.get_sync(sync)
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    # The CLI callback set the level; keep it, and add this project's secrets to redaction.
    logs.configure(logging.getLevelName(logging.getLogger().getEffectiveLevel()), project.secrets())
    runtime = Runtime.open(project)
    try:
        rows = link_rows(runtime.store, sync)
        if csv_path == "-":
            write_csv(rows, sys.stdout)
            return
        if csv_path is not None:
            with Path(csv_path).open("w", newline="", encoding="utf-8") as fh:
                n = write_csv(rows, fh)
            Console().print(f"{n} links written to {csv_path}")
            return
        table = Table(title=f"links of {sync}", title_justify="left")
        for name in ("key", "ticket", "url", "install_status", "outcome"):
            table.add_column(name)
        for row in rows:
            table.add_row(
                row["key"], row["ticket"], row["url"], row["install_status"], row["outcome"]
            )
        Console().print(table)
    finally:
        runtime.close()
