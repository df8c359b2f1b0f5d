"""The integrations the benchmark measures besides TicketCo -> Airship CRM (which lives in
``bench/scenarios.py``): their sandboxes, projects and destination reading."""

from __future__ import annotations

from bench.integrations.base import Integration
from bench.integrations.heyloyalty import TicketmasterHeyloyalty
from bench.integrations.wallet import TicketcoWallet

CRM = "ticketco-airship"
OTHERS: dict[str, type[Integration]] = {
    TicketmasterHeyloyalty.name: TicketmasterHeyloyalty,
    TicketcoWallet.name: TicketcoWallet,
}
NAMES = (CRM, *OTHERS)


def get(name: str) -> Integration:
    return OTHERS[name]()
