"""What a venue's operator does in the console every morning, in a real browser, on SQLite and
on PostgreSQL state (issue 17, "what it must show" 1 and 2)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.web.conftest import OPERATOR_PASSWORD, VIEWER_PASSWORD, ConsoleStack, log_in

AIRSHIP = "ticketco-bookings-to-airship"
HEYLOYALTY = "ticketmaster-customers-to-heyloyalty"


def _run_id(page: Page) -> int:
    page.wait_for_url(re.compile(r".*/runs/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def _outcome(page: Page) -> str:
    return page.locator("#live .badge").first.inner_text()


def test_a_wrong_password_is_refused_and_the_right_one_shows_every_sync(
    context: BrowserContext, stack: ConsoleStack
) -> None:
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/"))
    page.fill("input[name=password]", "not-the-password")
    with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    assert context.cookies() == [] or all(c["name"] != "role" for c in context.cookies())
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))  # still logged out

    log_in(page, OPERATOR_PASSWORD, "ada")
    cards = page.locator("section.sync")
    names = sorted(cards.evaluate_all("els => els.map(e => e.dataset.sync)"))
    assert names == sorted(stack.console.project().syncs)
    airship = page.locator(f"section.sync[data-sync='{AIRSHIP}']")
    expect(airship).to_contain_text("ticketco (ticketco · bookings)")
    expect(airship).to_contain_text("airship_crm (airship_crm · contact_bookings)")
    expect(airship).to_contain_text("0 4 * * *")
    expect(airship.locator(".badge").first).to_have_text("ok")  # the seeded first run
    cookie = next(c for c in context.cookies() if c["name"] == "ticketbridge_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_start_a_run_and_watch_it_finish(operator: Page, stack: ConsoleStack) -> None:
    # Slow source calls make the run last a few seconds, long enough to watch it run; its
    # first call is answered 503 and retried, which the run's log says.
    stack.admin(
        "ticketco",
        "faults",
        {"latency_ms": 40, "slow_rate": 1.0, "fail_next": 1, "fail_status": 503},
    )
    try:
        card = operator.locator(f"section.sync[data-sync='{AIRSHIP}']")
        card.get_by_role("button", name="Run now").click()
        run_id = _run_id(operator)
        expect(operator.locator("#live .badge").first).to_have_text("running")
        expect(operator.locator("#live progress")).to_be_visible()
        expect(operator.locator("#live .badge").first).to_have_text("ok", timeout=60_000)
    finally:
        stack.admin("ticketco", "faults", {})
    expect(operator.locator("#live")).to_contain_text("ada (console, operator)")
    run = stack.console.store.get_run(run_id)
    assert run is not None and run.outcome == "ok" and run.counters.read > 0
    assert run.detail["started_by"] == "ada (console, operator)"
    read = operator.locator("table.counters td").first.inner_text()
    assert int(read) == run.counters.read
    assert operator.locator("#live progress").count() == 0
    expect(operator.locator("pre.log")).to_contain_text("http.retry")
    expect(operator.locator("pre.log")).to_contain_text("status=503")


def test_open_a_rejected_record_and_retry_it(operator: Page, stack: ConsoleStack) -> None:
    store = stack.console.store
    open_before = {d.key: d.attempts for d in store.list_dead_letters(HEYLOYALTY)}
    assert open_before, "the seeded run rejected records (invalid emails in the sandbox)"
    first_run = min(r.id for r in store.list_runs(HEYLOYALTY, limit=1000) if r.kind == "run")
    operator.goto(f"/runs/{first_run}")
    rejected = operator.locator("table.rejected a").first
    key = rejected.inner_text()
    rejected.click()
    expect(operator.locator("h1")).to_have_text(key)
    letter = next(d for d in store.list_dead_letters(HEYLOYALTY) if d.key == key)
    expect(operator.locator("dd.reason")).to_have_text(letter.reason)
    expect(operator.locator("pre.payload").first).to_contain_text(key.rsplit(":", 1)[-1])

    operator.get_by_role("button", name="Retry this record now").click()
    run_id = _run_id(operator)
    expect(operator.locator("#live .badge").first).not_to_have_text("running", timeout=60_000)
    run = store.get_run(run_id)
    assert run is not None and run.kind == "retry" and run.counters.retried == 1
    after = {d.key: d.attempts for d in store.list_dead_letters(HEYLOYALTY, include_resolved=True)}
    assert after[key] == open_before[key] + 1, "retried (and refused again: its email is bad)"
    others = {k: n for k, n in after.items() if k != key and k in open_before}
    assert others == {k: n for k, n in open_before.items() if k != key}, "only the one chosen"


def test_the_csv_download_is_the_file_ticketbridge_errors_writes(
    operator: Page, stack: ConsoleStack
) -> None:
    operator.goto(f"/dead-letters?sync={HEYLOYALTY}")
    total = int(operator.locator("p strong").first.inner_text().replace(",", ""))
    with operator.expect_download() as download:
        operator.get_by_role("link", name="Download CSV").click()
    path = download.value.path()
    body = path.read_bytes()
    written = stack.directory / "errors.csv"
    cli = stack.cli("errors", HEYLOYALTY, "--csv", str(written))
    assert cli.returncode == 0, cli.stderr
    assert body == written.read_bytes()
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == total > 0
    letters = {d.key: d for d in stack.console.store.list_dead_letters(HEYLOYALTY)}
    assert {r["key"] for r in rows} == set(letters)
    for row in rows:
        assert row["reason"] == letters[row["key"]].reason
        assert int(row["attempts"]) == letters[row["key"]].attempts
    assert download.value.suggested_filename == f"{HEYLOYALTY}-errors.csv"


def test_a_dry_run_shows_the_planned_changes_and_writes_nothing(
    operator: Page, stack: ConsoleStack
) -> None:
    changed = stack.admin(
        "ticketmaster", "mutate", {"share": 0.2, "new_customers": 2, "new_orders": 0, "seed": 5}
    )
    assert changed
    writes = stack.admin("heyloyalty", "stats")["writes"]
    checkpoint = stack.console.store.get_checkpoint(HEYLOYALTY)
    operator.goto(f"/syncs/{HEYLOYALTY}")
    operator.get_by_role("button", name="Dry run (plan only)").click()
    run_id = _run_id(operator)
    expect(operator.locator("h1")).to_contain_text("dry-run")
    plan = operator.locator("table.plan tbody tr")
    expect(plan.first).to_be_visible()
    actions = plan.locator("td:first-child").all_inner_texts()
    assert "create" in actions, actions
    assert "update" in actions, actions
    update = plan.filter(has=operator.locator("td:first-child", has_text="update")).first
    expect(update.locator("summary").first).to_contain_text("member:")
    run = stack.console.store.get_run(run_id)
    assert run is not None and run.kind == "dry-run"
    assert run.detail["started_by"] == "ada (console, operator)"
    assert run.counters.created == actions.count("create")
    assert run.counters.updated == actions.count("update")
    assert stack.admin("heyloyalty", "stats")["writes"] == writes, "nothing was written"
    assert stack.console.store.get_checkpoint(HEYLOYALTY) == checkpoint


def test_a_manual_import_of_14_months_is_two_chunks(operator: Page, stack: ConsoleStack) -> None:
    end = datetime.now(UTC).date() + timedelta(days=1)
    start = end - timedelta(days=425)  # 14 months: one year, then 60 days
    operator.goto(f"/syncs/{HEYLOYALTY}")
    operator.get_by_role("link", name="Manual import…").click()
    operator.fill("input[name=start]", start.isoformat())
    operator.fill("input[name=end]", end.isoformat())
    operator.locator("input[name=end]").dispatch_event("change")
    chunks = operator.locator("#chunks li.chunk")
    expect(chunks).to_have_count(2)
    expect(chunks.nth(0)).to_contain_text(f"{start.isoformat()} →")
    expect(chunks.nth(0)).to_contain_text("(365 days)")
    expect(chunks.nth(1)).to_contain_text(f"→ {(end - timedelta(days=1)).isoformat()}")
    operator.select_option("select[name=members]", "yes")
    operator.select_option("select[name=orders]", "no")
    operator.select_option("select[name=resubscribe]", "no")
    operator.select_option("select[name=send_optin]", "yes")
    operator.select_option("select[name=automations]", "no")
    operator.select_option("select[name=import_type]", "update")
    operator.get_by_role("button", name="Start the import").click()
    run_id = _run_id(operator)
    expect(operator.locator("#live .badge").first).not_to_have_text("running", timeout=60_000)
    run = stack.console.store.get_run(run_id)
    assert run is not None and run.kind == "backfill" and run.outcome == "ok"
    chosen = run.detail["import"]
    assert len(chosen["chunks"]) == 2
    assert (chosen["members"], chosen["orders"], chosen["send_optin"]) == (True, False, True)
    assert chosen["import_type"] == "update"
    expect(operator.locator("main")).to_contain_text("chunks")


def test_a_form_without_its_csrf_token_is_refused(operator: Page, stack: ConsoleStack) -> None:
    runs = stack.runs_of(AIRSHIP)
    operator.goto(f"/syncs/{AIRSHIP}")
    form = operator.locator(f"form[action='/syncs/{AIRSHIP}/run']")
    form.locator("input[name=csrf]").evaluate("e => e.remove()")
    with operator.expect_response(lambda r: r.url.endswith("/run")) as answer:
        form.get_by_role("button").click()
    assert answer.value.status == 403
    expect(operator.get_by_role("alert")).to_contain_text("security token")
    assert stack.runs_of(AIRSHIP) == runs, "nothing started"


def test_the_read_only_role_cannot_start_runs(viewer: Page, stack: ConsoleStack) -> None:
    runs = stack.runs_of(AIRSHIP)
    expect(viewer.locator("section.sync").first).to_be_visible()
    assert viewer.get_by_role("button", name="Run now").count() == 0
    viewer.goto(f"/syncs/{AIRSHIP}")
    assert viewer.get_by_role("button", name="Run now").count() == 0
    # A hand-made form with a valid token is still refused: the role is checked server-side.
    token = viewer.locator("input[name=csrf]").first.get_attribute("value")
    viewer.evaluate(
        """([action, token]) => {
            const f = document.createElement('form');
            f.method = 'post'; f.action = action;
            const i = document.createElement('input');
            i.name = 'csrf'; i.value = token; f.appendChild(i);
            document.body.appendChild(f); f.submit();
        }""",
        [f"/syncs/{AIRSHIP}/run", token],
    )
    expect(viewer.get_by_role("alert")).to_contain_text("read-only")
    assert stack.runs_of(AIRSHIP) == runs


def test_set_the_checkpoint_after_confirming(operator: Page, stack: ConsoleStack) -> None:
    store = stack.console.store
    before = store.get_checkpoint(HEYLOYALTY)
    assert before is not None
    wanted = {**before, "cursor": "2026-01-01T00:00:00+00:00"}
    operator.goto(f"/syncs/{HEYLOYALTY}")
    operator.locator("details summary", has_text="Set the checkpoint").click()
    operator.fill("textarea[name=value]", __import__("json").dumps(wanted))
    operator.get_by_role("button", name="Review the change…").click()
    expect(operator.locator("h1")).to_contain_text("Change the checkpoint")
    assert store.get_checkpoint(HEYLOYALTY) == before, "not before it is confirmed"
    operator.get_by_role("button", name="Yes, set the checkpoint").click()
    expect(operator.locator(".banner.info")).to_contain_text("checkpoint was changed")
    assert store.get_checkpoint(HEYLOYALTY) == wanted
    recorded = store.list_runs(HEYLOYALTY, limit=1)[0]
    assert recorded.kind == "checkpoint" and recorded.detail["new"] == wanted
    assert recorded.detail["old"] == before
    assert recorded.detail["by"] == "ada (console, operator)", "as checkpoint --set records it"
    store.set_checkpoint(HEYLOYALTY, before)  # leave the state as the other tests expect


def test_every_page_fits_a_phone_screen(operator: Page, stack: ConsoleStack) -> None:
    operator.set_viewport_size({"width": 390, "height": 844})
    run_id = stack.console.store.list_runs(AIRSHIP, limit=1)[0].id
    for path in (
        "/",
        f"/syncs/{AIRSHIP}",
        f"/syncs/{HEYLOYALTY}",
        f"/syncs/{HEYLOYALTY}/import",
        f"/runs/{run_id}",
        "/dead-letters",
        "/sales",
    ):
        operator.goto(path)
        wide = operator.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"{path} is {wide} px wider than a phone screen"


def test_filter_dead_letters_and_retry_the_selected_ones(
    operator: Page, stack: ConsoleStack
) -> None:
    store = stack.console.store
    before = {d.key: d.attempts for d in store.list_dead_letters(HEYLOYALTY)}
    operator.goto("/dead-letters")
    operator.select_option("select[name=sync]", HEYLOYALTY)
    operator.fill("input[name=reason]", "email")
    operator.select_option("select[name=age]", "1d")
    operator.get_by_role("button", name="Filter").click()
    rows = operator.locator("table.letters tbody tr")
    expect(rows.first).to_contain_text(HEYLOYALTY)
    shown = rows.locator("td.key").all_inner_texts()
    assert shown and set(shown) <= set(before)
    assert all("email" in r for r in rows.locator("td:nth-child(5)").all_inner_texts())
    picked = shown[:2]
    for key in picked:
        operator.get_by_label(f"retry {key}").check()
    operator.get_by_role("button", name="Retry selected").click()
    run_id = _run_id(operator)
    expect(operator.locator("#live .badge").first).not_to_have_text("running", timeout=60_000)
    run = store.get_run(run_id)
    assert run is not None and run.kind == "retry" and run.counters.retried == len(picked)
    after = {d.key: d.attempts for d in store.list_dead_letters(HEYLOYALTY, include_resolved=True)}
    assert {k for k in before if after[k] != before[k]} == set(picked)


def test_an_operator_logs_everyone_out(
    operator: Page, browser: Browser, stack: ConsoleStack
) -> None:
    elsewhere = browser.new_context(base_url=stack.url)
    try:
        viewer = elsewhere.new_page()
        log_in(viewer, VIEWER_PASSWORD, "val")
        assert viewer.get_by_role("button", name="Log out everyone").count() == 0
        operator.goto("/dead-letters")
        operator.get_by_role("button", name="Log out everyone").click()
        operator.wait_for_url(re.compile(r".*/login$"))
        expect(operator.get_by_role("status")).to_contain_text("sessions ended, yours too")
        viewer.goto("/dead-letters")
        expect(viewer.locator("h1")).to_have_text("Log in")
        operator.goto("/")
        expect(operator.locator("h1")).to_have_text("Log in")
    finally:
        elsewhere.close()
