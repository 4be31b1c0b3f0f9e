"""A chat request as the gateway understands it, whatever dialect it came in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Attachment:
    """An image or document from a message: inline bytes, or a remote URL fetched later."""
    where: str                  # the request field it came from, e.g. "messages[2].content[1]"
    kind: str                   # "image" | "file"
    url: str | None = None      # http(s) URL (exactly one of url and data is set)
    # Inline content, already decoded: bytes, or for a large data URL the InlinePayload it was
    # decoded into while the body was read (size, sha256, data or reopen(); web/inline.py).
    data: bytes | None = None
    filename: str | None = None
    mime: str | None = None


@dataclass(slots=True)
class Message:
    role: str              # system | user | assistant | tool
    text: str
    name: str | None = None  # tool call id or participant name, when the client gave one
    attachments: tuple[Attachment, ...] = ()


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
    upstream_model: str | None = None       # options.model (2026-09 catalogue ids)
    efforts: tuple[str, ...] = ()           # upstream reasoning efforts the catalogue offers
    default_effort: str | None = None       # and the one it picks by default
    effort: str | None = None               # the client's: none | low | medium | high
    vision: bool = False
    context_length: int | None = None       # tokens
    live: bool = False                      # from the upstream catalogue, not our table


@dataclass(slots=True)
class ChatRequest:
    model: str
    spec: ModelSpec
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    conversation_id: str | None = None
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
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
    api_key: str | None = None      # the caller's API key id (an index or ak_...), never the key
    dialect: str | None = None      # when the route does not tell (the traffic record guesses)
    prompt_tokens: int | None = None        # estimates, when the answer's usage was counted
    completion_tokens: int | None = None

    def record_error(self, e: Exception) -> None:
        self.error_class, self.error_code = type(e).__name__, getattr(e, "code", None)
