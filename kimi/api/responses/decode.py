"""OpenAI Responses requests -> the canonical request (pure, no I/O).

`input` items become canonical messages the way the turn stores its answer, so a history a
client echoes back (Codex sends the whole of it every turn, `store: false`) matches the stored
conversation and continues its Kimi chat: an assistant's message items and the function or
custom tool calls after them form one assistant message; each tool output is a tool message
with its `call_id`. `reasoning` items and item types we do not know are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...canonical.models import resolve_model
from ...canonical.request import ChatRequest, Message
from ...canonical.tools import OutputFormat, ToolCall, ToolKind
from ...errors import InvalidRequest
from ..fields import echoed_arguments
from .parts import content_of
from .tools import decode_tools

ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
EFFORTS = {"none": "none", "minimal": "minimal", "low": "low", "medium": "medium",
           "high": "high", "xhigh": "high"}
CALLS = {"function_call": ToolKind.FUNCTION, "custom_tool_call": ToolKind.CUSTOM}
OUTPUTS = {"function_call_output", "custom_tool_call_output"}


@dataclass
class ResponsesRequest:
    req: ChatRequest
    instructions: Message | None
    input: list[Message]
    previous_response_id: str | None = None
    store: bool = True
    echo: dict = field(default_factory=dict)    # request fields the response object repeats

    def compose(self, history: list[Message]) -> None:
        """The request's messages after a stored response's `history`: new instructions
        (when they differ from the first ones) and the new input."""
        first = next((m.text for m in history if m.role == "system"), None)
        extra = [self.instructions] if self.instructions and (
            not history or self.instructions.text != first) else []
        self.req.messages = history + extra + self.input


def decode_responses_request(body, resolve=resolve_model) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model", "kimi")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    instructions = _optional(body, "instructions", str)
    previous = _optional(body, "previous_response_id", str)
    messages = decode_input(body.get("input"))
    if not messages and not previous:
        raise InvalidRequest("'input' must not be empty", param="input")
    tools, search = decode_tools(body)
    spec = resolve(model, search)
    reasoning = _reasoning(body, spec)
    store = _optional(body, "store", bool)
    stream = bool(_optional(body, "stream", bool))
    req = ChatRequest(model=model, spec=spec, messages=[], stream=stream, include_usage=True,
                      max_tokens=_max_output_tokens(body), tools=tools, output=_text_format(body))
    _check_ignored(body)
    echo = {"instructions": instructions, "max_output_tokens": req.max_tokens, "model": model,
            "parallel_tool_calls": tools.parallel, "previous_response_id": previous,
            "reasoning": reasoning, "store": store is not False,
            "temperature": body.get("temperature"), "text": _text_echo(body),
            "tool_choice": body.get("tool_choice") or "auto", "tools": body.get("tools") or [],
            "top_p": body.get("top_p"), "truncation": body.get("truncation") or "disabled",
            "metadata": _metadata(body), "prompt_cache_key": body.get("prompt_cache_key"),
            "user": body.get("user")}
    system = Message(role="system", text=instructions) if instructions else None
    out = ResponsesRequest(req, system, messages, previous, store is not False, echo)
    if previous is None:
        out.compose([])
    return out


def _optional(body: dict, key: str, kind: type):
    value = body.get(key)
    if value is not None and not isinstance(value, kind):
        name = {str: "a string", bool: "true or false"}[kind]
        raise InvalidRequest(f"'{key}' must be {name}", param=key)
    return value


def decode_input(raw) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message(role="user", text=raw)]
    if not isinstance(raw, list):
        raise InvalidRequest("'input' must be a string or an array of items", param="input")
    history = _History()
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest(f"input[{i}] must be an object", param=f"input[{i}]")
        history.add(item, f"input[{i}]")
    return history.messages


class _History:
    def __init__(self):
        self.messages: list[Message] = []
        self.names: dict[str, str] = {}     # call id -> tool name, for the results

    def add(self, item: dict, where: str) -> None:
        kind = item.get("type") or ("message" if "role" in item else None)
        if not isinstance(kind, str | None):
            raise InvalidRequest(f"{where}.type must be a string", param=f"{where}.type")
        if kind == "message":
            self._message(item, where)
        elif kind in CALLS:
            self._call(item, CALLS[kind], where)
        elif kind in OUTPUTS:
            call_id = _string(item, "call_id", where)
            text, attachments = content_of(item.get("output"), f"{where}.output")
            self.messages.append(Message(role="tool", text=text, attachments=attachments,
                                         tool_call_id=call_id, name=self.names.get(call_id)))
        # reasoning (Kimi's thinking is not sent back), and item types we do not know: skipped

    def _message(self, item: dict, where: str) -> None:
        role = item.get("role")
        role = ROLES.get(role) if isinstance(role, str) else None
        if role is None:
            raise InvalidRequest(f"{where}.role must be one of user, system, developer, "
                                 "assistant", param=f"{where}.role")
        text, attachments = content_of(item.get("content"), f"{where}.content")
        last = self.messages[-1] if self.messages else None
        if role == "assistant" and last is not None and last.role == "assistant" \
                and not last.tool_calls:
            last.text += text       # one answer, split around its reasoning
            return
        self.messages.append(Message(role=role, text=text, attachments=attachments))

    def _call(self, item: dict, kind: ToolKind, where: str) -> None:
        call_id, name = _string(item, "call_id", where), _string(item, "name", where)
        self.names[call_id] = name
        last = self.messages[-1] if self.messages else None
        if last is None or last.role != "assistant":
            last = Message(role="assistant", text="")
            self.messages.append(last)
        if kind == ToolKind.CUSTOM:
            raw = item.get("input")
            if not isinstance(raw, str):
                raise InvalidRequest(f"{where}.input must be a string", param=f"{where}.input")
            arguments = raw
        else:
            arguments = echoed_arguments(item.get("arguments"))
        last.tool_calls += (ToolCall(call_id, name, arguments, kind, len(last.tool_calls)),)


def _string(item: dict, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{where}.{key} must be a non-empty string", param=f"{where}.{key}")
    return value



def _reasoning(body: dict, spec) -> dict:
    raw = body.get("reasoning")
    if raw is None:
        return {"effort": None, "summary": None}
    if not isinstance(raw, dict):
        raise InvalidRequest("'reasoning' must be an object", param="reasoning")
    effort = raw.get("effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in EFFORTS:
            raise InvalidRequest(f"reasoning.effort must be one of {', '.join(EFFORTS)}",
                                 param="reasoning.effort")
        spec.thinking = effort != "none"
        spec.effort = EFFORTS[effort]
    return {"effort": effort, "summary": raw.get("summary")}


def _max_output_tokens(body: dict) -> int | None:
    value = body.get("max_output_tokens")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequest("'max_output_tokens' must be a positive integer",
                             param="max_output_tokens")
    return value


def _text_format(body: dict) -> OutputFormat | None:
    text = body.get("text")
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None if fmt is None else "?"
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind == "json_schema" and isinstance(fmt.get("schema"), dict):
        return OutputFormat("json_schema", fmt["schema"], fmt.get("name"), bool(fmt.get("strict")))
    raise InvalidRequest("text.format must be {\"type\": \"text\" | \"json_object\"} or "
                         "{\"type\": \"json_schema\", \"name\", \"schema\": {...}}",
                         param="text.format")


def _text_echo(body: dict) -> dict:
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    return {"format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium"}


def _metadata(body: dict) -> dict:
    raw = body.get("metadata")
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise InvalidRequest("'metadata' must be an object of at most 16 string values",
                             param="metadata")
    return raw


def _check_ignored(body: dict) -> None:
    """Knobs the web chat lacks: checked for type, then ignored."""
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidRequest(f"'{key}' must be a number", param=key)
    include = body.get("include")
    if include is not None and not (isinstance(include, list)
                                    and all(isinstance(s, str) for s in include)):
        raise InvalidRequest("'include' must be an array of strings", param="include")
    _optional(body, "prompt_cache_key", str)
