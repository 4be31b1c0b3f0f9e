"""OpenAI's legacy text completions (`POST /v1/completions`) -> the canonical request.

The prompt (a string, or a list of one string) is one user message. `suffix` (insertion) and
token-id prompts are refused: the web chat only continues a conversation. `echo` puts the
prompt before the answer; `stop` and `max_tokens` are enforced by the gateway. No default
`max_tokens` of 16 (as OpenAI's) is applied: a chat answer that short is rarely wanted.
`temperature`, `top_p`, penalties, `seed`, `user` and `logit_bias` are accepted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...canonical.models import resolve_model
from ...canonical.request import ChatRequest, Message
from ...errors import InvalidRequest

MAX_STOPS = 4       # OpenAI's limit for this route


@dataclass(slots=True)
class CompletionRequest:
    chat: ChatRequest
    prompt: str
    echo: bool


def decode_completion(body, resolve=resolve_model) -> CompletionRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model", "kimi")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    if body.get("suffix") not in (None, ""):
        raise InvalidRequest("'suffix' (insertion between a prompt and a suffix) is not "
                             "supported: the Kimi web chat can only continue a prompt",
                             param="suffix", code="unsupported_parameter")
    for key in ("n", "best_of"):
        if body.get(key) not in (None, 1):
            raise InvalidRequest(f"'{key}' must be 1: Kimi gives one answer per request",
                                 param=key)
    if body.get("logprobs") not in (None, 0):
        raise InvalidRequest("'logprobs' is not available: the web chat does not report "
                             "token probabilities", param="logprobs",
                             code="unsupported_parameter")
    stream, echo = _bool(body, "stream"), _bool(body, "echo")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    prompt = _prompt(body.get("prompt"))
    chat = ChatRequest(model=model, spec=resolve(model), stream=stream,
                       messages=[Message(role="user", text=prompt)],
                       include_usage=not stream or bool(options and options.get("include_usage")),
                       stop=_stop(body.get("stop")), max_tokens=_max_tokens(body.get("max_tokens")))
    return CompletionRequest(chat, prompt, echo)


def _bool(body: dict, key: str) -> bool:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"'{key}' must be true or false", param=key)
    return bool(value)


def _prompt(raw) -> str:
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    elif isinstance(raw, list) and raw and all(isinstance(p, str) for p in raw):
        raise InvalidRequest("'prompt' holds several prompts: send one per request (Kimi "
                             "gives one answer per request)", param="prompt")
    if isinstance(raw, str) and raw.strip():
        return raw
    if isinstance(raw, list) or isinstance(raw, int):
        raise InvalidRequest("'prompt' as token ids is not supported: send the text",
                             param="prompt")
    raise InvalidRequest("'prompt' must be a non-empty string (or a list of one)",
                         param="prompt")


def _stop(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and len(value) <= MAX_STOPS and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise InvalidRequest(f"'stop' must be a string or an array of at most {MAX_STOPS} strings",
                         param="stop")


def _max_tokens(value) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequest("'max_tokens' must be a positive integer", param="max_tokens")
    return value
