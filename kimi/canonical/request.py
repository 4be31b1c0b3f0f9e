"""A chat request as the gateway understands it, whatever dialect it came in."""

from __future__ import annotations

from dataclasses import dataclass, field

from .tools import OutputFormat, ToolCall, Tools


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
    name: str | None = None  # participant name, or a tool result's tool name
    attachments: tuple[Attachment, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()   # an assistant's calls
    tool_call_id: str | None = None         # a tool result's call
    is_error: bool = False                  # a tool result the client flagged as an error


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
    include_usage: bool = False     # the answer reports usage (computed only then)
    conversation_id: str | None = None
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    tools: Tools = field(default_factory=Tools)
    output: OutputFormat | None = None      # structured output
    call_id_prefix: str = "call_"           # the dialect's tool call id style
    show_reasoning: bool = True             # False: the client never sees the reasoning, so
                                            # it does not count against max_tokens


@dataclass(slots=True)
class Trace:
    """What one request did, for its log line. Filled in as the request goes."""
    request_id: str
    route: str = ""
    dialect: str | None = None
    model: str | None = None
    account: str | None = None
    status: int | None = None
    started: float = 0.0
    first_token: float | None = None
    note: str | None = None
    error_class: str | None = None  # the GatewayError subclass answered, pre-stream or in band
    error_code: str | None = None
    api_key: str | None = None      # the caller's API key id (an index or ak_...), never the key
    prompt_tokens: int | None = None        # estimates, when the answer's usage was counted
    completion_tokens: int | None = None
    # An answer cut short (client gone, upstream error) that still needs counting: a callable
    # that fills in the two counts above, run later off the request path (the console's fold).
    count_later: object = None

    def record_error(self, e: Exception) -> None:
        self.error_class, self.error_code = type(e).__name__, getattr(e, "code", None)
