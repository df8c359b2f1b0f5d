"""ticketbridge: an integration hub for live-event ticketing data."""

__version__ = "0.1.0"
