"""The homepage's copyable examples and client settings, as plain text.

`{base}` is this server's own URL as the visitor reached it and `{key}` what goes where the
API key goes; both are filled in per request. The tests run the curl, Python and JavaScript
examples exactly as printed against a live gateway.
"""

from __future__ import annotations

CURL = """\
curl {base}/v1/chat/completions \\
  -H "Authorization: Bearer {key}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "kimi", "stream": true, "messages": [{{"role": "user", "content": "Hello"}}]}}'
"""

PYTHON = """\
from openai import OpenAI

client = OpenAI(base_url="{base}/v1", api_key="{key}")
stream = client.chat.completions.create(
    model="kimi", stream=True, messages=[{{"role": "user", "content": "Hello"}}])
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="", flush=True)
print()
"""

# Node.js 18+ or a browser console; SSE is parsed by hand to show the wire format.
JAVASCRIPT = """\
const res = await fetch("{base}/v1/chat/completions", {{
  method: "POST",
  headers: {{"Authorization": "Bearer {key}", "Content-Type": "application/json"}},
  body: JSON.stringify({{model: "kimi", stream: true,
                        messages: [{{role: "user", content: "Hello"}}]}}),
}});
if (!res.ok) throw new Error((await res.json()).error.message);
const reader = res.body.getReader();
const decoder = new TextDecoder();
let buffer = "", answer = "";
for (let done = false; !done; ) {{
  const part = await reader.read();
  if (part.done) break;
  buffer += decoder.decode(part.value, {{stream: true}});
  const events = buffer.split("\\n\\n");
  buffer = events.pop();
  for (const event of events) {{
    if (!event.startsWith("data: ")) continue;   // ": keep-alive" comments
    if (event === "data: [DONE]") {{ done = true; break; }}
    const chunk = JSON.parse(event.slice(6));
    if (chunk.error) throw new Error(chunk.error.message);
    answer += chunk.choices[0]?.delta?.content ?? "";
  }}
}}
console.log(answer);
"""

# Codex CLI speaks only the Responses API (/v1/responses); the key goes in the variable.
# An auth command (not env_key) makes Codex fetch /v1/models?client_version=..., the model
# metadata that gives it its full tool set (apply_patch) for Kimi's names.
CODEX = """\
# ~/.codex/config.toml   (then: export KIMI_GATEWAY_KEY={key}; codex)
model = "kimi"
model_provider = "kimi"

[model_providers.kimi]
name = "Kimi gateway"
base_url = "{base}/v1"
wire_api = "responses"
# the key as a command prints it: Codex then also fetches the gateway's model metadata
auth = {{ command = "printenv", args = ["KIMI_GATEWAY_KEY"] }}
"""

EXAMPLES = (("curl", CURL), ("Python (openai)", PYTHON),
            ("JavaScript (fetch, streaming)", JAVASCRIPT), ("Codex CLI", CODEX))

# (client, where to go, [(field, value)]); values are templates like the examples.
CLIENTS = (
    ("NextChat", "Settings \u2192 Custom Endpoint (on), provider OpenAI",
     [("Endpoint", "{base}"), ("API Key", "{key}"), ("Custom Models", "-all,+{models}"),
      ("Docker env", "BASE_URL={base} OPENAI_API_KEY={key}")]),
    ("LobeChat", "Settings \u2192 Language Model \u2192 OpenAI",
     [("API Proxy Address", "{base}/v1"), ("API Key", "{key}"), ("Model List", "{models}"),
      ("Docker env", "OPENAI_PROXY_URL={base}/v1 OPENAI_API_KEY={key}")]),
    ("Cherry Studio", "Settings \u2192 Model Provider \u2192 Add, type OpenAI",
     [("API Host", "{base}"), ("API Key", "{key}"), ("Models", "{models}")]),
    ("Dify", "Settings \u2192 Model Provider \u2192 OpenAI-API-compatible \u2192 Add Model",
     [("Model Type", "LLM"), ("Model Name", "kimi"), ("API endpoint URL", "{base}/v1"),
      ("API Key", "{key}"), ("Completion mode", "Chat")]),
    ("one-api / new-api", "Channels \u2192 Add channel, type OpenAI",
     [("Base URL", "{base}"), ("Key", "{key}"), ("Models", "{models}")]),
    ("Claude Code", "environment variables (or \"env\" in ~/.claude/settings.json)",
     [("ANTHROPIC_BASE_URL", "{base}"), ("ANTHROPIC_AUTH_TOKEN", "{key}"),
      ("ANTHROPIC_MODEL", "claude-sonnet-4-5"),
      ("ANTHROPIC_DEFAULT_HAIKU_MODEL", "claude-haiku-4-5"),
      ("CLAUDE_AUTOCOMPACT_PCT_OVERRIDE", "70"),
      ("API_TIMEOUT_MS", "600000")]),
    ("Cherry Studio (Anthropic)", "Settings \u2192 Model Provider \u2192 Add, type Anthropic",
     [("API Host", "{base}"), ("API Key", "{key}"),
      ("Models", "claude-sonnet-4-5,claude-haiku-4-5")]),
    ("Gemini CLI", "environment (Gemini API; \"Use Gemini API key\" at first start)",
     [("Shell", "GOOGLE_GEMINI_BASE_URL={base} GEMINI_API_KEY={key} gemini -m kimi"),
      ("~/.gemini/settings.json (for gemini -p)",
       '{{"security": {{"auth": {{"selectedType": "gemini-api-key"}}}}}}'),
      ("gemini -p in a new folder", "GEMINI_CLI_TRUST_WORKSPACE=true (or --skip-trust)")]),
)


def fill(template: str, base: str, key: str, models: str = "kimi") -> str:
    return template.format(base=base, key=key, models=models)
