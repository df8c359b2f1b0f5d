"""The sync engine. It never imports httpx or a connector package."""
