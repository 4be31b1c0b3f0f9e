"""OpenAI Chat Completions requests -> the canonical request (pure, no I/O)."""

from __future__ import annotations

import orjson

from ...canonical.models import resolve_model
from ...canonical.request import Attachment, ChatRequest, Message
from ...canonical.tools import (ChoiceMode, OutputFormat, ToolCall, ToolChoice, ToolKind,
                                Tools, ToolSpec)
from ...errors import InvalidRequest
from ..fields import echoed_arguments, tool_name_and_description
from .attachments import ATTACHMENT_TYPES, decode_attachment
from .options import apply_thinking, decode_limits

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def decode_chat_request(body, resolve=resolve_model) -> ChatRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model", "kimi")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    stream = _bool(body, "stream")
    use_search = _bool(body, "use_search")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    include_usage = not stream or bool(options and options.get("include_usage"))
    conversation_id = body.get("conversation_id")
    if conversation_id is not None and not isinstance(conversation_id, str):
        raise InvalidRequest("'conversation_id' must be a string", param="conversation_id")
    messages = decode_messages(body.get("messages"))
    spec = resolve(model, use_search)
    apply_thinking(body, spec)
    stop, max_tokens = decode_limits(body)
    tools = decode_tools(body)
    return ChatRequest(model=model, spec=spec, messages=_freeform_calls(messages, tools),
                       stream=stream, include_usage=include_usage,
                       conversation_id=conversation_id, stop=stop, max_tokens=max_tokens,
                       tools=tools, output=decode_response_format(body))


def _bool(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(f"'{key}' must be true or false", param=key)
    return value


def decode_messages(raw) -> list[Message]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    return [_message(m, f"messages[{i}]") for i, m in enumerate(raw)]


def _message(m, where: str) -> Message:
    if not isinstance(m, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    role = m.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidRequest(f"{where}.role must be one of system, user, assistant, tool",
                             param=f"{where}.role")
    role = {"developer": "system", "function": "tool"}.get(role, role)
    text, attachments = _content(m.get("content"), f"{where}.content")
    name = m.get("name") if isinstance(m.get("name"), str) else None
    calls: tuple[ToolCall, ...] = ()
    if role == "assistant":
        calls = _history_calls(m, where)
    call_id = m.get("tool_call_id")
    if call_id is not None and not isinstance(call_id, str):
        raise InvalidRequest(f"{where}.tool_call_id must be a string", param=f"{where}.tool_call_id")
    if role == "tool" and call_id is None:
        call_id = name      # the legacy `function` role names the function instead
    return Message(role=role, text=text, name=name, attachments=attachments, tool_calls=calls,
                   tool_call_id=call_id if role == "tool" else None)


def _history_calls(m: dict, where: str) -> tuple[ToolCall, ...]:
    raw = m.get("tool_calls")
    if raw is None and isinstance(m.get("function_call"), dict):
        raw = [{"id": "", "type": "function", "function": m["function_call"]}]
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    calls = []
    for i, c in enumerate(raw):
        at = f"{where}.tool_calls[{i}]"
        fn = c.get("function") if isinstance(c, dict) else None
        custom = c.get("custom") if isinstance(c, dict) else None
        if isinstance(custom, dict) and isinstance(custom.get("name"), str):
            calls.append(ToolCall(str(c.get("id") or ""), custom["name"],
                                  str(custom.get("input", "")), ToolKind.CUSTOM, i))
            continue
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidRequest(f"{at} must have function.name", param=f"{at}.function.name")
        calls.append(ToolCall(str(c.get("id") or ""), fn["name"],
                              echoed_arguments(fn.get("arguments")), ToolKind.FUNCTION, i))
    return tuple(calls)


def _freeform_calls(messages: list[Message], tools: Tools) -> list[Message]:
    """A freeform tool's call goes out as a function call with arguments {"input": raw}
    (encode.arguments_text); the client echoes it so. Back to the raw input, as stored."""
    custom = {s.name for s in tools.specs if s.kind == ToolKind.CUSTOM} if tools else None
    if not custom:
        return messages
    for m in messages:
        if any(c.name in custom for c in m.tool_calls):
            m.tool_calls = tuple(_raw_input(c) if c.name in custom else c for c in m.tool_calls)
    return messages


def _raw_input(call: ToolCall) -> ToolCall:
    args = call.arguments
    if call.kind == ToolKind.FUNCTION and isinstance(args, dict) and list(args) == ["input"] \
            and isinstance(args["input"], str):
        return ToolCall(call.id, call.name, args["input"], ToolKind.CUSTOM, call.index)
    return call



def _content(content, where: str) -> tuple[str, tuple[Attachment, ...]]:
    if content is None:
        return "", ()
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or an array of parts", param=where)
    texts, attachments = [], []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequest(f"{where}[{j}] must be an object with a 'type'", param=f"{where}[{j}]")
        if part["type"] in ("text", "input_text"):
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{where}[{j}].text must be a string", param=f"{where}[{j}].text")
            texts.append(part["text"])
        elif part["type"] in ATTACHMENT_TYPES:
            attachments.append(decode_attachment(part, f"{where}[{j}]"))
        else:
            raise InvalidRequest(f"{where}[{j}]: content part type '{part['type']}' is not "
                                 "supported", param=f"{where}[{j}].type")
    return "\n".join(texts), tuple(attachments)


# --- tools ---------------------------------------------------------------------------------

NO_TOOLS = Tools()
TOOL_FIELDS = ("tools", "functions", "tool_choice", "function_call", "parallel_tool_calls")


def decode_tools(body: dict) -> Tools:
    """`tools` (or the legacy `functions`), `tool_choice` (or `function_call`) and
    `parallel_tool_calls`. Tool types other than function and custom (built-in tools of
    other products) are ignored."""
    if body.keys().isdisjoint(TOOL_FIELDS):
        return NO_TOOLS
    raw = body.get("tools")
    if raw is None and body.get("functions") is not None:
        raw = [{"type": "function", "function": f} for f in _list(body["functions"], "functions")]
    specs = tuple(s for i, t in enumerate(_list(raw, "tools"))
                  if (s := _tool(t, f"tools[{i}]")) is not None)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequest("'parallel_tool_calls' must be true or false",
                             param="parallel_tool_calls")
    choice = body.get("tool_choice", body.get("function_call"))
    return Tools(specs=specs, choice=_choice(choice, specs), parallel=parallel is not False)


def _list(value, param: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array", param=param)
    return value


def _tool(t, where: str) -> ToolSpec | None:
    if not isinstance(t, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    kind = t.get("type", "function")
    if not isinstance(kind, str):
        raise InvalidRequest(f"{where}.type must be a string", param=f"{where}.type")
    if kind not in ("function", "custom"):
        return None
    body = t.get(kind)
    if not isinstance(body, dict):
        raise InvalidRequest(f"{where}.{kind} must be an object", param=f"{where}.{kind}")
    name, description = tool_name_and_description(body, f"{where}.{kind}")
    if kind == "custom":
        fmt = body.get("format")
        text = orjson.dumps(fmt).decode() if isinstance(fmt, dict) and fmt.get("type") != "text" \
            else None
        return ToolSpec(name, description, None, ToolKind.CUSTOM, text)
    schema = body.get("parameters")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidRequest(f"{where}.function.parameters must be a JSON Schema object",
                             param=f"{where}.function.parameters")
    return ToolSpec(name, description, schema)


def _choice(raw, specs: tuple[ToolSpec, ...]) -> ToolChoice:
    if raw is None or raw == "auto":
        return ToolChoice()
    if raw in ("none", "required"):
        return ToolChoice(ChoiceMode(raw))
    if isinstance(raw, dict):
        if raw.get("type") == "allowed_tools":
            return _allowed(raw.get("allowed_tools"), specs)
        inner = raw.get(_type_of(raw)) or raw
        name = inner.get("name") if isinstance(inner, dict) else None
        if isinstance(name, str):
            if not any(s.name == name for s in specs):
                raise InvalidRequest(f"tool_choice names '{name}', which is not in 'tools'",
                                     param="tool_choice")
            return ToolChoice(ChoiceMode.NAMED, name)
    raise InvalidRequest("'tool_choice' must be \"auto\", \"none\", \"required\" or "
                         "{\"type\": \"function\", \"function\": {\"name\": ...}}",
                         param="tool_choice")


def _allowed(raw, specs) -> ToolChoice:
    if not isinstance(raw, dict) or not isinstance(raw.get("tools"), list):
        raise InvalidRequest("tool_choice.allowed_tools must have a 'tools' array",
                             param="tool_choice.allowed_tools")
    names = []
    for t in raw["tools"]:
        inner = t.get(_type_of(t)) if isinstance(t, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            names.append(inner["name"])
    mode = ChoiceMode.REQUIRED if raw.get("mode") == "required" else ChoiceMode.AUTO
    return ToolChoice(mode, allowed=tuple(n for n in names if any(s.name == n for s in specs)))


def _type_of(choice: dict) -> str:
    """The key holding a tool choice's body: its `type` ("function" when absent or odd)."""
    kind = choice.get("type")
    return kind if isinstance(kind, str) and kind else "function"


def decode_response_format(body: dict) -> OutputFormat | None:
    raw = body.get("response_format")
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise InvalidRequest("response_format.json_schema must be an object with a 'schema'",
                                 param="response_format.json_schema")
        return OutputFormat("json_schema", spec.get("schema"), spec.get("name"),
                            bool(spec.get("strict")))
    raise InvalidRequest("response_format.type must be text, json_object or json_schema",
                         param="response_format.type")
