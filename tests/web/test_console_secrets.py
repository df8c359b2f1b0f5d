"""No secret reaches a page or a download (issue 17, "what it must show" 4).

The project's secrets (the sandboxes' keys and passwords, an SMTP password) and the console's
own passwords are known; a platform is made to echo some of them into a rejected record, its
reason, a run's error and its log lines (as a careless API might). Then every page the
console links to, every download and the live fragments are fetched as an operator, and none
may contain any of them.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

from playwright.sync_api import BrowserContext

from tests.web.conftest import OPERATOR_PASSWORD, ConsoleStack, log_in
from ticketbridge.engine.state.base import DeadLetterIn, RunCounters
from ticketbridge.web.redact import project_secrets

SYNC = "ticketco-bookings-to-airship"
MAX_PAGES = 400
HREF = re.compile(r"""href=["']([^"'#]+)""")


def _echo_secrets(stack: ConsoleStack, secrets: list[str]) -> str:
    """A run whose platform echoed credentials into a rejected record, its reason, the run's
    error and its log lines. Returns the dead letter's key."""
    store = stack.console.store
    lease = store.acquire_lease(SYNC, "secrets-test", 60)
    assert lease is not None
    run_id = store.start_run(SYNC, "run", lease, {"started_by": "secrets test"})
    key = "booking:ticketco:ECHO-1"
    store.commit_batch(
        lease,
        run_id,
        dead_letters=[
            DeadLetterIn(
                key=key,
                stage="destination",
                reason=f"{key}: HTTP 400 invalid request (api_key={secrets[0]})",
                record={"key": key, "api_key": secrets[1], "note": f"sent with {secrets[2]}"},
                raw={"password": secrets[3], "echo": f"Bearer {secrets[4]}"},
            )
        ],
    )
    store.finish_run(
        run_id,
        lease,
        "failed",
        RunCounters(read=1, rejected=1),
        error=f"airship_crm: HTTP 401 for token {secrets[5 % len(secrets)]}",
        detail={"started_by": "secrets test", "log": [f"retry with key {secrets[0]}"]},
    )
    store.release_lease(lease)
    return key


def test_no_page_or_download_shows_a_secret(context: BrowserContext, stack: ConsoleStack) -> None:
    secrets = sorted(
        {*stack.secrets(), *(s for s in project_secrets(stack.console.project()) if len(s) >= 6)}
    )
    assert len(secrets) >= 8, secrets  # the sandboxes' keys, SMTP and console passwords
    key = _echo_secrets(stack, secrets)
    page = context.new_page()
    log_in(page, OPERATOR_PASSWORD)
    origin = stack.url
    start = [
        "/",
        f"/syncs/{SYNC}",
        f"/syncs/{SYNC}/import",
        f"/syncs/{SYNC}/import/chunks?start=2024-01-01&end=2025-03-01",
        f"/dead-letters?sync={SYNC}&status=all",
        f"/dead-letters/record?sync={SYNC}&key={key}",
        f"/dead-letters.csv?sync={SYNC}",
        f"/dead-letters.csv?sync={SYNC}&all=1",
        "/sales",
    ]
    start += [f"/runs/{r.id}/progress" for r in stack.console.store.list_runs(limit=5)]
    queue = deque(start)
    seen: set[str] = set()
    pages = 0
    while queue and pages < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        response = context.request.get(urljoin(origin, path))
        assert response.status < 500, (path, response.status)
        body = response.text()
        pages += 1
        for secret in secrets:
            assert secret not in body, f"{path} shows a secret ({secret[:3]}…)"
        if "html" not in response.headers.get("content-type", ""):
            continue
        for href in HREF.findall(body):
            target = urljoin(origin + path, href.replace("&amp;", "&"))
            parts = urlsplit(target)
            if f"{parts.scheme}://{parts.netloc}" != origin or parts.path.startswith("/static"):
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert pages > 20, f"only {pages} pages were reached"
    assert f"/dead-letters/record?sync={SYNC}&key={key}" in seen
    letter_page = context.request.get(
        urljoin(origin, f"/dead-letters/record?sync={SYNC}&key={key}")
    )
    assert "••••••" in letter_page.text(), "the echoed secrets are shown masked"
