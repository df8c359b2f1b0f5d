"""Inbound platform callbacks ticketbridge serves: Airship Wallet's pass install and uninstall
callbacks, recorded per pass in the state store and shown by ``ticketbridge links``.

Not a connector (connectors never touch the state store): a small server of the application,
started by ``ticketbridge serve`` for every Wallet connection with a ``callbacks`` block.
"""

from ticketbridge.callbacks.app import create_app, report_of
from ticketbridge.callbacks.serve import check_servable, configured, register, serve, start

__all__ = ["check_servable", "configured", "create_app", "register", "report_of", "serve", "start"]
