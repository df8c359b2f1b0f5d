"""``python -m bench.console``: how long each console page takes on a big state.

Fills a fresh state database (SQLite file, or a fresh schema of ``--postgres URL``) with
``--runs`` runs and ``--letters`` dead letters spread over two syncs and the last 60 days, plus
``--sales`` Tiqets reservations, the way the engine writes them (bulk inserts into its own
tables, after its migrations). Then serves the console under uvicorn on loopback, logs in, and
requests every page ``--repeat`` times, timing each request from the client (what a browser
waits for, rendering and loopback HTTP included). Writes ``results/<date>-console-<db>.json``
and prints a table (median, p95, max milliseconds per page).

Nothing here calls a platform: the project's connections point at ports nobody serves.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import SecretStr
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from bench.report import environment
from ticketbridge.demo import project_dict, sandbox_env
from ticketbridge.engine.state import tables as t
from ticketbridge.engine.state.sql import open_store
from ticketbridge.sandbox import serve_asgi
from ticketbridge.supplier.reservations import reservations
from ticketbridge.web import UiSettings, create_app

HERE = Path(__file__).resolve().parent
SYNCS = ("ticketco-bookings-to-airship", "ticketmaster-customers-to-heyloyalty")
PASSWORD = "bench-operator-password"  # noqa: S105 - the benchmark's own console, on loopback
REASONS = (
    "no email and no valid UK mobile (email: invalid email '{n}.mail.dk': An email address "
    "must have an @-sign.)",
    "no usable email to match the member on (match: email; email: missing)",
    "no buyer email (tracking field 'email' <- 'order.contact.email')",
    "HTTP 422: contact rejected: mobile is not a valid UK number",
)
OUTCOMES = ("ok",) * 16 + ("partial", "failed", "skipped", "crashed")


def _project(directory: Path) -> Path:
    urls = {p: f"http://127.0.0.1:{9 + i}" for i, p in enumerate(
        ["ticketco", "airship_crm", "ticketmaster", "heyloyalty", "acme"])}  # fmt: skip
    path = directory / "ticketbridge.yaml"
    path.write_text(yaml.safe_dump(project_dict(urls)))
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in sandbox_env().items()))
    return path


def _schema(server: str, schema: str, *, create: bool) -> str:
    """Create (or drop) ``schema`` on the server; the URL whose connections use it."""
    engine = create_engine(server)
    with engine.begin() as conn:
        verb = f'CREATE SCHEMA "{schema}"' if create else f'DROP SCHEMA "{schema}" CASCADE'
        conn.execute(text(verb))
    engine.dispose()
    parsed = make_url(server)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def _record(key: str, n: int) -> dict[str, Any]:
    return {
        "key": key,
        "kind": "booking",
        "data": {
            "external_id": str(n),
            "status": "confirmed",
            "contact": {
                "email": f"guest{n}.mail.dk",
                "first_name": "Guest",
                "last_name": f"Number {n}",
                "mobile": "+4670158583",
            },
            "event": {"external_id": f"E{n % 300}", "name": f"Concert {n % 300}"},
            "tickets": [{"price": {"amount": "250.00", "currency": "DKK"}}],
        },
    }


def fill(url: str, runs: int, letters: int, sales: int, seed: int = 7) -> dict[str, Any]:
    """The state: ``runs`` runs and ``letters`` dead letters over two syncs, 60 days."""
    rng = random.Random(seed)
    open_store(url).close()  # migrations, as the engine would run them
    engine = create_engine(url)
    now = datetime.now(UTC)
    span = timedelta(days=60)
    run_rows = []
    for i in range(runs):
        started = now - span + span * (i / max(runs, 1))
        outcome = rng.choice(OUTCOMES)
        sync = SYNCS[i % 2]
        read = rng.randint(0, 5000)
        run_rows.append(
            {
                "sync": sync,
                "kind": "run" if i % 50 else "retry",
                "outcome": outcome,
                "started_at": started,
                "finished_at": started + timedelta(seconds=rng.uniform(0.5, 90)),
                "counters": {
                    "read": read,
                    "created": read // 10,
                    "updated": read // 5,
                    "unchanged": read // 2,
                    "rejected": rng.randint(0, 20),
                    "source_calls": read // 50 + 1,
                    "destination_calls": read // 4,
                },
                "error": None if outcome in ("ok", "skipped") else "HTTP 503 after 5 retries",
                "detail": {"started_by": "schedule", "budget_wait_s": 0.4},
            }
        )
    letter_rows = []
    for n in range(letters):
        sync = SYNCS[n % 2]
        key = f"booking:ticketco:{n:08d}" if n % 2 == 0 else f"contact:ticketmaster:DK:{n:08d}"
        seen = now - span * rng.random()
        letter_rows.append(
            {
                "sync": sync,
                "key": key,
                "stage": rng.choice(("prepare", "prepare", "destination", "mapping")),
                "reason": f"{key}: " + rng.choice(REASONS).format(n=n),
                "record": _record(key, n),
                "raw": None,
                "attempts": rng.randint(1, 12),
                "first_seen": seen,
                "last_seen": min(now, seen + timedelta(days=rng.random() * 3)),
                "last_run_id": rng.randint(1, max(runs, 1)),
                "resolved_at": seen + timedelta(days=1) if rng.random() < 0.2 else None,
            }
        )
    sale_rows = []
    for n in range(sales):
        created = now - span * rng.random()
        status = rng.choice(("booked", "booked", "cancelled", "held"))
        sale_rows.append(
            {
                "id": uuid.UUID(int=rng.getrandbits(128)).hex[:16],
                "environment": "sandbox",
                "product_id": "highlights-tour",
                "template_id": "T-1",
                "instance_id": f"I-{n % 90}",
                "slot": f"{(created + timedelta(days=7)):%Y-%m-%dT%H:00}",
                "visit_at": created + timedelta(days=7),
                "quantity": 2,
                "tickets": [{"variant_id": "adult", "quantity": 2, "price": "13.50"}],
                "customer": {"first_name": "Ann", "last_name": "Lee", "email": "a@b.example"},
                "currency": "EUR",
                "status": status,
                "created_at": created,
                "expires_at": created + timedelta(minutes=15),
                "order_reference": str(300000000000 + n) if status != "held" else None,
                "booking_id": uuid.UUID(int=rng.getrandbits(128)).hex if status != "held" else None,
                "acme_order_id": uuid.UUID(int=rng.getrandbits(128)).hex[:24]
                if status != "held"
                else None,
                "barcodes": None,
                "test_order": False,
                "booked_at": created if status != "held" else None,
                "cancelled_at": created + timedelta(days=1) if status == "cancelled" else None,
                "cancellation": {"method": "refund", "amount": "27.00"}
                if status == "cancelled"
                else None,
            }
        )
    with engine.begin() as conn:
        for start in range(0, len(run_rows), 5000):
            conn.execute(insert(t.runs), run_rows[start : start + 5000])
        for start in range(0, len(letter_rows), 5000):
            conn.execute(insert(t.dead_letters), letter_rows[start : start + 5000])
        if sale_rows:
            conn.execute(insert(reservations), sale_rows)
    if engine.dialect.name == "postgresql":
        # What autovacuum does to a table this size within a minute (statistics, and the
        # visibility map that index-only scans need); SQLite gets nothing: ticketbridge never
        # runs ANALYZE there.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return {"runs": runs, "dead_letters": letters, "sales": sales}


def pages(client: httpx.Client, runs: int) -> dict[str, str]:
    """The pages to time: every page, with the filters that cost the most."""
    sync = SYNCS[0]
    after = client.get(f"/dead-letters?sync={sync}").text
    token = after.split("after=", 1)[1].split('"', 1)[0] if "after=" in after else ""
    key = "booking:ticketco:00000000"
    return {
        "overview": "/",
        "sync": f"/syncs/{sync}",
        "sync, failed runs": f"/syncs/{sync}?outcome=failed",
        "sync, older page": f"/syncs/{sync}?before=5000",
        "run (with its rejected records)": f"/runs/{max(1, runs - 1)}",
        "dead letters (every sync)": "/dead-letters",
        "dead letters (one sync)": f"/dead-letters?sync={sync}",
        "dead letters (next page)": f"/dead-letters?sync={sync}&after={token}",
        "dead letters (reason contains)": "/dead-letters?reason=mobile",
        "dead letters (reason few have)": "/dead-letters?reason=77777.mail",
        "dead letters (first seen < 1 d)": "/dead-letters?age=1d",
        "dead letters (older than 30 d, all)": "/dead-letters?older=30d&status=all",
        "dead letter": f"/dead-letters/record?sync={sync}&key={key}",
        "import form": f"/syncs/{SYNCS[1]}/import",
        "Tiqets sales": "/sales",
        "Tiqets sales (cancelled)": "/sales?status=cancelled",
    }


def time_pages(url: str, repeat: int, runs: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=url, timeout=120, follow_redirects=True) as client:
        login = client.get("/login").text
        csrf = login.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"csrf": csrf, "name": "bench", "password": PASSWORD})
        for name, path in pages(client, runs).items():
            client.get(path)  # warm: templates compiled, caches filled
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.status_code)
            times.sort()
            out[name] = {
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                "max_ms": round(times[-1], 1),
                "bytes": len(response.content),
            }
        start = time.perf_counter()
        csv = client.get(f"/dead-letters.csv?sync={SYNCS[0]}")
        out["CSV download (one sync, open)"] = {
            "median_ms": round((time.perf_counter() - start) * 1000, 1),
            "p95_ms": 0.0,
            "max_ms": 0.0,
            "bytes": len(csv.content),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--letters", type=int, default=100_000)
    p.add_argument("--sales", type=int, default=2_000)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--postgres", metavar="URL", help="a PostgreSQL server (a fresh schema)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        project = _project(Path(tmp))
        schema = None
        if args.postgres:
            schema = f"bench_console_{uuid.uuid4().hex[:8]}"
            url = _schema(args.postgres, schema, create=True)
        else:
            url = f"sqlite:///{tmp}/state.db"
        try:
            began = time.perf_counter()
            size = fill(url, args.runs, args.letters, args.sales)
            fill_s = time.perf_counter() - began
            settings = UiSettings(project, database_url=url, operator_password=SecretStr(PASSWORD))
            server, thread, console_url = serve_asgi(create_app(settings), "console", lifespan="on")
            try:
                timings = time_pages(console_url, args.repeat, args.runs)
            finally:
                server.should_exit = True
                thread.join(timeout=30)
        finally:
            if schema is not None and args.postgres:
                _schema(args.postgres, schema, create=False)
    db = "postgres" if args.postgres else "sqlite"
    command = "python -m bench.console " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {
        "environment": environment(command),
        "database": db,
        "state": size,
        "fill_s": round(fill_s, 1),
        "repeat": args.repeat,
        "pages": timings,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{datetime.now(UTC):%Y-%m-%d}-console-{db}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"{db}: {size['runs']:,} runs, {size['dead_letters']:,} dead letters, "
          f"{size['sales']:,} sales (filled in {fill_s:.0f} s); ms per request")  # fmt: skip
    print("| page | median | p95 | max |\n|---|---:|---:|---:|")
    for name, row in timings.items():
        print(f"| {name} | {row['median_ms']} | {row['p95_ms']} | {row['max_ms']} |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
