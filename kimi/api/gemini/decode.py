"""Gemini generateContent requests -> the canonical request (pure, no I/O).

- `generationConfig`: `maxOutputTokens` and `stopSequences` are enforced by the gateway;
  `thinkingConfig` turns Kimi's thinking on (`thinkingBudget` 0 turns it off) and
  `includeThoughts` shows it as thought parts; `responseMimeType: application/json` with
  `responseSchema` / `responseJsonSchema` asks for structured output; `candidateCount` must
  be 1 and `responseModalities` TEXT. Sampling knobs (temperature, topP, topK, seed,
  penalties) are accepted and ignored: the web chat has no such settings.
- `tools`: `functionDeclarations` (with `parameters` or `parametersJsonSchema`); a
  `googleSearch` tool turns on Kimi's web search. Other built-in tools are ignored.
- `toolConfig.functionCallingConfig`: mode AUTO, ANY (a call is required), NONE, VALIDATED
  (as AUTO), and `allowedFunctionNames`.
- `safetySettings`, `cachedContent` and `labels` are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...canonical.models import resolve_model
from ...canonical.request import ChatRequest, ModelSpec
from ...canonical.tools import ChoiceMode, OutputFormat, ToolChoice, Tools, ToolSpec
from ...errors import InvalidRequest
from ..fields import tool_name_and_description
from .contents import decode_contents, decode_system
from .wire import array, get, json_schema, obj

MAX_STOPS = 16
EFFORTS = ("low", "medium", "high")
MODES = {"AUTO": ChoiceMode.AUTO, "VALIDATED": ChoiceMode.AUTO,
         "MODE_UNSPECIFIED": ChoiceMode.AUTO, "ANY": ChoiceMode.REQUIRED, "NONE": ChoiceMode.NONE}


@dataclass(slots=True)
class GeminiRequest:
    chat: ChatRequest
    include_thoughts: bool      # reasoning goes out as thought parts


def model_name(path_model: str) -> str:
    name = path_model[len("models/"):] if path_model.startswith("models/") else path_model
    if not name.strip():
        raise InvalidRequest("the model name in the path is empty", param="model")
    return name


def decode_generate(body, path_model: str, stream: bool, resolve=resolve_model) -> GeminiRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = model_name(path_model)
    messages = decode_system(get(body, "systemInstruction")) + \
        decode_contents(body.get("contents"))
    tools, search = decode_tools(body)
    spec = resolve(model, search)
    config = obj(get(body, "generationConfig"), "generationConfig")
    include_thoughts = apply_thinking(config, spec)
    stop, max_tokens = decode_limits(config)
    chat = ChatRequest(model=model, spec=spec, messages=messages, stream=stream,
                       include_usage=True, stop=stop, max_tokens=max_tokens, tools=tools,
                       output=decode_output(config))
    return GeminiRequest(chat, include_thoughts)


def decode_count(body, path_model: str, resolve=resolve_model) -> ChatRequest:
    """countTokens: `contents` (with optional tools and systemInstruction), or a whole
    `generateContentRequest`."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    inner = get(body, "generateContentRequest")
    if inner is not None:
        return decode_generate(obj(inner, "generateContentRequest"), path_model, False,
                               resolve).chat
    return decode_generate(body, path_model, False, resolve).chat


def apply_thinking(config: dict, spec: ModelSpec) -> bool:
    thinking = obj(get(config, "thinkingConfig"), "generationConfig.thinkingConfig")
    include = get(thinking, "includeThoughts", False)
    budget, level = get(thinking, "thinkingBudget"), get(thinking, "thinkingLevel")
    if not isinstance(include, bool):
        raise InvalidRequest("thinkingConfig.includeThoughts must be true or false",
                             param="generationConfig.thinkingConfig.includeThoughts")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise InvalidRequest("thinkingConfig.thinkingBudget must be an integer",
                             param="generationConfig.thinkingConfig.thinkingBudget")
    if budget == 0:
        spec.thinking = False
    elif budget is not None or level is not None or include:
        spec.thinking = True
    if isinstance(level, str) and level.lower() in EFFORTS:
        spec.effort = level.lower()
    return include and spec.thinking


def decode_limits(config: dict) -> tuple[tuple[str, ...], int | None]:
    count = get(config, "candidateCount")
    if count is not None and count != 1:
        raise InvalidRequest("candidateCount must be 1: Kimi gives one answer per request",
                             param="generationConfig.candidateCount")
    modalities = array(get(config, "responseModalities"), "generationConfig.responseModalities")
    if any(not isinstance(m, str) or m.upper() != "TEXT" for m in modalities):
        raise InvalidRequest("responseModalities: the Kimi web chat answers in text only",
                             param="generationConfig.responseModalities")
    stops = array(get(config, "stopSequences"), "generationConfig.stopSequences")
    if len(stops) > MAX_STOPS or not all(isinstance(s, str) for s in stops):
        raise InvalidRequest(f"stopSequences must be at most {MAX_STOPS} strings",
                             param="generationConfig.stopSequences")
    limit = get(config, "maxOutputTokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidRequest("maxOutputTokens must be a positive integer",
                             param="generationConfig.maxOutputTokens")
    return tuple(s for s in stops if s), limit


def decode_output(config: dict) -> OutputFormat | None:
    mime = get(config, "responseMimeType")
    raw_json = get(config, "responseJsonSchema")
    openapi = get(config, "responseSchema")
    if mime in (None, "text/plain") and raw_json is None and openapi is None:
        return None
    if mime not in (None, "text/plain", "application/json"):
        raise InvalidRequest(f"responseMimeType '{mime}' is not supported (text/plain and "
                             "application/json are)", param="generationConfig.responseMimeType")
    if raw_json is not None:
        return OutputFormat("json_schema", obj(raw_json, "generationConfig.responseJsonSchema"))
    if openapi is not None:
        return OutputFormat("json_schema",
                            json_schema(obj(openapi, "generationConfig.responseSchema")))
    return OutputFormat("json_object")


# --- tools ---------------------------------------------------------------------------------

def decode_tools(body: dict) -> tuple[Tools, bool]:
    """(the function tools and how they may be chosen, whether Google Search was offered)."""
    specs, search = [], False
    for i, tool in enumerate(array(body.get("tools"), "tools")):
        tool = obj(tool, f"tools[{i}]", required=True)
        declarations = array(get(tool, "functionDeclarations"), f"tools[{i}].functionDeclarations")
        specs += [_declaration(d, f"tools[{i}].functionDeclarations[{j}]")
                  for j, d in enumerate(declarations)]
        search = search or any(get(tool, k) is not None
                               for k in ("googleSearch", "googleSearchRetrieval"))
    config = obj(get(obj(get(body, "toolConfig"), "toolConfig"), "functionCallingConfig"),
                 "toolConfig.functionCallingConfig")
    return Tools(specs=tuple(specs), choice=_choice(config, specs)), search


def _declaration(d, where: str) -> ToolSpec:
    d = obj(d, where, required=True)
    name, description = tool_name_and_description(d, where)
    schema = get(d, "parametersJsonSchema")
    if schema is None and get(d, "parameters") is not None:
        schema = json_schema(obj(get(d, "parameters"), f"{where}.parameters"))
    if schema is not None and not isinstance(schema, dict):
        raise InvalidRequest(f"{where}.parametersJsonSchema must be a JSON Schema object",
                             param=f"{where}.parametersJsonSchema")
    return ToolSpec(name, description, schema)


def _choice(config: dict, specs: list[ToolSpec]) -> ToolChoice:
    mode = get(config, "mode", "AUTO")
    if not isinstance(mode, str) or mode.upper() not in MODES:
        raise InvalidRequest("functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED",
                             param="toolConfig.functionCallingConfig.mode")
    names = array(get(config, "allowedFunctionNames"),
                  "toolConfig.functionCallingConfig.allowedFunctionNames")
    if not all(isinstance(n, str) for n in names):
        raise InvalidRequest("allowedFunctionNames must be an array of function names",
                             param="toolConfig.functionCallingConfig.allowedFunctionNames")
    known = {s.name for s in specs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidRequest(f"allowedFunctionNames names {unknown[0]!r}, which no "
                             "functionDeclaration declares",
                             param="toolConfig.functionCallingConfig.allowedFunctionNames")
    return ToolChoice(MODES[mode.upper()], allowed=tuple(names))

