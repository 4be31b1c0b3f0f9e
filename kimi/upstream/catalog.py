"""Kimi's live model catalogue: `ConfigService/GetAvailableModels` -> ModelSpecs, refreshed
in the background so that no request ever waits for it (protocol reference, section 4.9)."""

from __future__ import annotations

import asyncio
import logging
import re

from ..canonical.models import CONTEXT_256K, ModelCatalogue
from ..canonical.request import ModelSpec
from ..errors import GatewayError
from .client import MODELS_PATH
from .fields import field

log = logging.getLogger("kimi.catalog")

# Kimi: context length enum -> tokens (displayName "256K" / "1M").
CONTEXT_LENGTHS = {"CONTEXT_LENGTH_L": 262144, "CONTEXT_LENGTH_XL": 1048576}


def decode_catalog(body: dict) -> tuple[list[ModelSpec], ModelSpec | None]:
    """The live entries a client can use, and the default chat model among them."""
    default = field(body, "defaultScenario")
    default = default if isinstance(default, dict) else {}
    default_key = field(body, "defaultChatModel") or default.get("model")
    default_agent = field(body, "defaultAgentModel")
    specs, chosen = [], None
    for item in field(body, "availableModels") or ():
        spec = _entry(item) if isinstance(item, dict) else None
        if spec is None:
            continue
        key = spec.id[len("kimi-"):]
        if key == default_agent:
            specs.insert(0, spec)   # first agent of its mode = what `kimi-agent` picks
        else:
            specs.append(spec)
        if chosen is None and not spec.agent_mode and (
                key == default_key or (not default_key and not spec.thinking
                                       and spec.scenario == default.get("scenario"))):
            chosen = spec
    return specs, chosen


def _entry(item: dict) -> ModelSpec | None:
    key = item.get("key") or item.get("id")
    scenario = item.get("scenario")
    if not isinstance(key, str) or not key or not isinstance(scenario, str):
        return None
    efforts = tuple(o.get("effort") for o in field(item, "reasoningEffortOptions") or ()
                    if isinstance(o, dict) and isinstance(o.get("effort"), str))
    # Kimi: 2026-09 entries name the catalogue id in options.model; 2026-05 ones do not.
    upstream_model = key if "reasoningEffortOptions" in item or "id" in item else None
    return ModelSpec(
        id="kimi-" + re.sub(r"[^a-z0-9.-]+", "-", key.lower()),
        description=" - ".join(x for x in (field(item, "displayName"), item.get("description"))
                               if isinstance(x, str) and x),
        scenario=scenario, thinking=bool(item.get("thinking")),
        kimiplus_id=field(item, "kimiPlusId") or None, agent_mode=field(item, "agentMode") or None,
        upstream_model=upstream_model, efforts=efforts,
        default_effort=field(item, "defaultReasoningEffort") or None,
        context_length=CONTEXT_LENGTHS.get(field(item, "defaultContextLength"), CONTEXT_256K),
        live=True)


class CatalogueRefresher:
    """Fetches the catalogue now and every `interval` seconds; on failure keeps what it had
    (at first: our static table) and tries again sooner."""

    def __init__(self, catalogue: ModelCatalogue, client, session, token_source,
                 interval: float, retry: float = 60.0):
        self.catalogue = catalogue
        self.client, self.session = client, session
        self.token_source = token_source    # async () -> access token of the first account
        self.interval, self.retry = interval, retry
        self.attempts = 0

    async def refresh(self) -> bool:
        self.attempts += 1
        try:
            token = await self.token_source()
            body = await self.client.unary(self.session, token, MODELS_PATH, {})
        except GatewayError as e:
            log.warning("model catalogue unavailable, using %s models: %s",
                        self.catalogue.source, e.code or type(e).__name__)
            return False
        specs, default = decode_catalog(body)
        if not specs:
            log.warning("model catalogue was empty; keeping %s models", self.catalogue.source)
            return False
        self.catalogue.update(specs, default)
        log.info("model catalogue: %d live models", len(specs))
        return True

    async def run(self) -> None:
        while True:
            ok = await self.refresh()
            await asyncio.sleep(self.interval if ok else min(self.retry, self.interval))
