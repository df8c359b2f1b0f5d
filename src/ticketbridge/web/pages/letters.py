"""Dead letters: filter by sync, reason, stage and age; one record with its payload (secrets
redacted); retry the selected ones; the CSV that ``ticketbridge errors --csv`` writes."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from ticketbridge import dead_letters
from ticketbridge.engine.spec import RunOptions
from ticketbridge.web import queries
from ticketbridge.web.auth import User
from ticketbridge.web.console import Console
from ticketbridge.web.pages.actions import start_run
from ticketbridge.web.pages.common import console_of, refuse
from ticketbridge.web.redact import mask

STAGES = ("mapping", "prepare", "destination")
STATUSES = ("open", "resolved", "all")
CSV_ROWS_PER_CHUNK = 1000


def _filter(console: Console, params: Any) -> queries.LetterFilter:
    syncs = list(console.project().syncs)
    return queries.LetterFilter(
        sync=params.get("sync", "") if params.get("sync") in syncs else "",
        reason=str(params.get("reason", ""))[:200],
        stage=params.get("stage", "") if params.get("stage") in STAGES else "",
        age=params.get("age", "") if params.get("age") in queries.AGES else "",
        older=params.get("older", "") if params.get("older") in queries.AGES else "",
        status=params.get("status", "open") if params.get("status") in STATUSES else "open",
        after=queries.LetterFilter.parse_after(params.get("after")),
        syncs=syncs,
    )


async def letters_page(request: Request, user: User) -> Response:
    console = console_of(request)
    flt = _filter(console, request.query_params)
    rows, more, total = await run_in_threadpool(queries.letters_page, console.store, flt)
    base = {k: v for k, v in request.query_params.items() if k != "after"}
    return console.render(
        request,
        "dead_letters.html",
        {
            "filter": flt,
            "rows": rows,
            "more": more,
            "total": total,
            "stages": STAGES,
            "statuses": STATUSES,
            "ages": [a for a in queries.AGES if a],
            "query": base,
            "done": request.query_params.get("done", ""),
        },
    )


async def letter_page(request: Request, user: User) -> Response:
    console = console_of(request)
    sync = request.query_params.get("sync", "")
    key = request.query_params.get("key", "")
    letter = await run_in_threadpool(queries.letter, console.store, sync, key)
    if letter is None:
        return refuse(request, 404, "There is no such dead letter.")
    return console.render(
        request,
        "dead_letter.html",
        {
            "sync": sync,
            "letter": letter,
            "record": None if letter.record is None else mask(letter.record),
            "raw": None if letter.raw is None else mask(letter.raw),
        },
    )


async def letters_csv(request: Request, user: User) -> Response:
    """Exactly ``ticketbridge errors SYNC --csv`` (``all=1``: ``--all``), secrets scrubbed."""
    console = console_of(request)
    sync = request.query_params.get("sync", "")
    if sync not in console.project().syncs:
        return refuse(request, 404, "Choose a sync: the CSV is one sync's dead letters.")
    include = request.query_params.get("all") == "1"
    rows = queries.csv_letters(console.store, sync, include)

    def chunks() -> Iterator[str]:
        # Same writer as the CLI (dead_letters.write_csv), a chunk of rows at a time.
        header = True
        while True:
            batch = list(itertools.islice(rows, CSV_ROWS_PER_CHUNK))
            if not batch and not header:
                return
            buffer = io.StringIO()
            (dead_letters.write_csv if header else _rows_only)(batch, buffer)
            header = False
            yield console.scrub(buffer.getvalue())
            if len(batch) < CSV_ROWS_PER_CHUNK:
                return

    name = quote(f"{sync}-errors.csv")
    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f"attachment; filename*=UTF-8''{name}"},
    )


def _rows_only(letters: list[Any], fh: io.StringIO) -> int:
    """Rows without the header (the chunks after the first)."""
    text = io.StringIO()
    count = dead_letters.write_csv(letters, text)
    fh.write(text.getvalue().split("\r\n", 1)[1])
    return count


async def retry_selected(request: Request, user: User) -> Response:
    """A retry run per sync of the selected dead letters, only those."""
    console = console_of(request)
    form = await request.form()
    chosen: dict[str, set[str]] = {}
    syncs = console.project().syncs
    for value in form.getlist("pick"):
        try:
            sync, key = json.loads(str(value))
        except (ValueError, TypeError):
            continue
        if sync in syncs:
            chosen.setdefault(str(sync), set()).add(str(key))
    if not chosen:
        return refuse(request, 400, "Select at least one dead letter to retry.")
    jobs = [
        start_run(console, sync, user, RunOptions(kind="retry", retry_keys=frozenset(keys)))
        for sync, keys in chosen.items()
    ]
    if len(jobs) == 1:
        return RedirectResponse(f"/jobs/{jobs[0].id}", status_code=303)
    return RedirectResponse(f"/?retrying={len(jobs)}", status_code=303)
