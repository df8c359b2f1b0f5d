"""Benchmarks of the TicketCo -> Airship CRM sync: ticketbridge against dlt and a raw ceiling.

``python -m bench --help``; the method and the latest results are in ``bench/README.md``.
"""
