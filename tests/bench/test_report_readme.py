"""``bench/README.md``'s integrations table keeps what a run did not measure.

``python -m bench --integration ticketco-wallet`` (or ``python -m bench.report`` on its rows)
rewrites the table between the ``bench:integrations`` markers; the Ticketmaster -> Heyloyalty
rows and the paragraph saying where they come from must survive it, while the Wallet rows and
paragraph of the earlier run are replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report

OLD = """# Benchmarks

<!-- bench:integrations:start -->
Ticketmaster → Heyloyalty rows: run 2026-12-03T19:52 at commit 9d9e587, nothing else running.

TicketCo → Airship Wallet rows: run 2026-12-03T18:39 at commit cc748bf, on a loaded machine.

| integration | scenario | records | contender | runs | wall s | notes |
|---|---|---|---|---|---|---|
| ticketmaster-heyloyalty | S1 | 10,000 customers | ticketbridge | 1 | 27.0 |  |
| ticketmaster-heyloyalty | S2 | 10,000 customers | ticketbridge | 1 | 1.7 |  |
| ticketco-wallet | S1 | 10,000 bookings | ticketbridge | 1 | 156.7 |  |

Correctness checks: 11 passed, 0 failed
<!-- bench:integrations:end -->

## After the table
"""


def _row(contender: str, wall: float) -> dict[str, Any]:
    return {
        "integration": "ticketco-wallet",
        "scenario": "S1",
        "records": 10_000,
        "unit": "bookings",
        "contender": contender,
        "run": 0,
        "exit_code": 0,
        "killed": False,
        "wall_s": wall,
        "records_per_s": 10_000 / wall,
        "source_calls": 611,
        "destination_calls": 485,
        "destination_writes": 72_950,
        "cpu_s_per_1k": 0.5,
        "max_rss_mb": 90.0,
        "tree_pss_mb": 80.0,
        "booking_keys_written": 24_236,
    }


def test_a_wallet_run_keeps_the_heyloyalty_rows_and_their_paragraph(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(OLD, encoding="utf-8")
    env = report.environment("python -m bench --integration ticketco-wallet")
    rows = [_row("ticketbridge", 150.0), _row("raw-aiohttp", 90.0)]
    checks = [
        {
            "check": "S1 ticketco-wallet ticketbridge run 0",
            "ok": True,
            "detail": "",
            "contender": "ticketbridge",
            "integration": "ticketco-wallet",
        }
    ]
    report.update_readme(readme, rows, env, checks, "integrations")
    text = readme.read_text(encoding="utf-8")
    heyloyalty = [line for line in OLD.splitlines() if "ticketmaster-heyloyalty |" in line]
    assert all(line in text for line in heyloyalty)
    assert "Ticketmaster → Heyloyalty rows: run 2026-12-03T19:52" in text
    assert "156.7" not in text and "cc748bf" not in text  # the old Wallet run is replaced
    assert "| ticketco-wallet | S1 | 10,000 bookings | raw-aiohttp | 1 | 90.0 |" in text
    assert (
        "Command: `python -m bench --integration ticketco-wallet`. Correctness checks: 1 passed"
        in text
    )
    section = text[text.index("integrations:start") : text.index("integrations:end")]
    lines = [line for line in section.splitlines() if line.startswith("| ticket")]
    assert [line.split("|")[1].strip() for line in lines] == ["ticketmaster-heyloyalty"] * 2 + [
        "ticketco-wallet"
    ] * 2
    assert text.endswith("<!-- bench:integrations:end -->\n\n## After the table\n")

    # Run again: the same section, nothing duplicated.
    report.update_readme(readme, rows, env, checks, "integrations")
    assert readme.read_text(encoding="utf-8") == text
