"""A chat request as the gateway understands it, whatever dialect it came in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Message:
    role: str              # system | user | assistant | tool
    text: str
    name: str | None = None  # tool call id or participant name, when the client gave one


@dataclass(slots=True)
class ModelSpec:
    """How a model name maps onto the upstream: scenario plus options."""
    id: str
    description: str
    scenario: str = "SCENARIO_K2D5"
    thinking: bool = False
    search: bool = False
    silent: bool = False
    kimiplus_id: str | None = None
    agent_mode: str | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str
    spec: ModelSpec
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    conversation_id: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(slots=True)
class Trace:
    """What one request did, for its log line. Filled in as the request goes."""
    request_id: str
    route: str = ""
    model: str | None = None
    account: str | None = None
    status: int | None = None
    started: float = 0.0
    first_token: float | None = None
    note: str | None = None
    error_class: str | None = None  # the GatewayError subclass answered, pre-stream or in band
    error_code: str | None = None

    def record_error(self, e: Exception) -> None:
        self.error_class, self.error_code = type(e).__name__, getattr(e, "code", None)
