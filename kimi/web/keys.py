"""Typed slots for the app-wide objects (filled in by kimi.app)."""

from typing import Any

from aiohttp import web

CONFIG = web.AppKey("config", Any)
SERVICE = web.AppKey("service", Any)
STARTED_AT = web.AppKey("started_at", float)
CATALOGUE = web.AppKey("catalogue", Any)          # canonical.models.ModelCatalogue
TOKEN_COUNTER = web.AppKey("token_counter", Any)  # usage.TokenCounter
TOKEN_CHECKS = web.AppKey("token_checks", Any)    # web.ratelimit.SlidingWindowLimit
BODY_BUDGET = web.AppKey("body_budget", Any)      # web.budget.BodyBudget
API_KEYS = web.AppKey("api_keys", Any)          # admin.keys.ApiKeys: keys made in the console
RESPONSES = web.AppKey("responses", Any)          # chat.responses.StoredResponses
PROBES = web.AppKey("probes", Any)            # name -> async () -> bool: shared state reachable
