"""The only package that imports httpx: client, auth schemes, paginators, retries, budgets."""

from ticketbridge.http.budget import RateBudget
from ticketbridge.http.client import ApiClient
from ticketbridge.http.context import HttpContext
from ticketbridge.http.retry import RetryPolicy

__all__ = ["ApiClient", "HttpContext", "RateBudget", "RetryPolicy"]
