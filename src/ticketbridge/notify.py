"""Error reports by email: after a run with failed records, one message listing them.

Configured per project (the SMTP server) and per sync (who receives the report)::

    smtp: {host: mail.example.org, port: 587, sender: ticketbridge@venue.example,
           username: tb, password: ${SMTP_PASSWORD}, starttls: true}
    syncs:
      members:
        notify: {errors_to: [crm@venue.example]}

The report names every record that failed in the run with its reason and attaches them as CSV,
so the person who can fix the source data has what they need without access to ticketbridge.
"""

from __future__ import annotations

import csv
import io
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ticketbridge.engine.state.base import DeadLetter

MAX_LISTED = 50


class SmtpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "ticketbridge@localhost"
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    timeout_s: float = 30.0


class NotifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    errors_to: list[str] = Field(min_length=1)


def dead_letters_csv(letters: Sequence[DeadLetter]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["key", "stage", "reason", "attempts", "first_seen", "last_seen"])
    for d in letters:
        writer.writerow(
            [
                d.key,
                d.stage,
                d.reason,
                d.attempts,
                d.first_seen.isoformat(),
                d.last_seen.isoformat(),
            ]
        )
    return buf.getvalue()


def error_report(
    sync: str,
    run_id: int,
    letters: Sequence[DeadLetter],
    smtp: SmtpConfig,
    to: Sequence[str],
    *,
    run_failed: str | None = None,
) -> EmailMessage:
    """The report of one run's failed records; ``run_failed`` is the run's error when the
    run as a whole failed (e.g. every record was refused)."""
    msg = EmailMessage()
    if run_failed:
        msg["Subject"] = f"ticketbridge: sync {sync} failed (run {run_id}): {run_failed}"
    else:
        msg["Subject"] = (
            f"ticketbridge: {len(letters)} record(s) failed in sync {sync} (run {run_id})"
        )
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(to)
    lines = [
        f"Run {run_id} of sync {sync} could not send {len(letters)} record(s).",
        "They are kept and retried on the next run; fix the source data or the mapping.",
        "",
    ]
    if run_failed:
        lines[:0] = [f"The run failed: {run_failed}", ""]
    for d in letters[:MAX_LISTED]:
        lines.append(f"- {d.key}: {d.reason}")
    if len(letters) > MAX_LISTED:
        lines.append(f"... and {len(letters) - MAX_LISTED} more in the attached CSV.")
    msg.set_content("\n".join(lines) + "\n")
    msg.add_attachment(
        dead_letters_csv(letters).encode("utf-8"),
        maintype="text",
        subtype="csv",
        filename=f"{sync}-run-{run_id}-errors.csv",
    )
    return msg


def send(msg: EmailMessage, smtp: SmtpConfig) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as server:
        if smtp.starttls:
            server.starttls(context=ssl.create_default_context())
        if smtp.username and smtp.password:
            server.login(smtp.username, smtp.password.get_secret_value())
        server.send_message(msg)
