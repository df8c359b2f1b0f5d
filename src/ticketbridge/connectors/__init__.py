"""Connectors: one package per platform, registered through entry points."""
