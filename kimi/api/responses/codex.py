"""Codex CLI's model metadata: `GET /v1/models?client_version=0.169.0` (Codex appends the
query to its provider's base_url + /models; it asks only providers with an `auth` command).
Codex picks its tools and prompt for a model from this entry: without one it warns "Model
metadata ... not found" and falls back to a tool set with no `apply_patch`. The values follow
Codex's classic GPT-5 family (shell tool, freeform `apply_patch`); the fields are the ones
Codex 0.169.0 requires, the instructions are our own."""

from __future__ import annotations

from ...canonical.request import ModelSpec
from .decode import EFFORTS

INSTRUCTIONS = """\
You are a coding agent working in the Codex CLI: you and the user share a workspace, and you \
carry out their requests in it with the tools you are given.

- Keep going until the request is handled: read the code you need, make the change, check it \
(build, tests, or running it) when you can, then report. Ask only when you cannot go on safely.
- Run commands with the command tool (`exec_command` or `shell`); search with `rg` and read large files in parts.
- Create, change and delete files with the `apply_patch` tool, never with shell redirection \
or editors. Its input is the raw patch text, not JSON, for example:
*** Begin Patch
*** Add File: notes/todo.md
+first line
*** Update File: src/app.py
@@ def greet():
-    return "hi"
+    return "hello"
*** Delete File: old.txt
*** End Patch
  Changed lines start with `-` or `+`, context lines with a space; paths are relative to the
  working directory.
- Follow the instructions of AGENTS.md files and of the user. Keep changes small and in the \
style of the code around them. Do not undo changes you did not make; run destructive \
commands (`git reset --hard`, `rm -rf`, ...) only when asked.
- End with a short plain answer: what you changed (file paths), how you checked it, what is \
left. Do not repeat the files you wrote.
"""

_LEVELS = {"none": "Thinking off", "minimal": "Thinking on, lightest",
           "low": "Thinking on, light", "medium": "Thinking on",
           "high": "Thinking on, deep", "xhigh": "Thinking on, deepest"}


def model_info(spec: ModelSpec, priority: int) -> dict:
    """One model as Codex's ModelInfo."""
    entry = {
        "slug": spec.id,
        "display_name": spec.id,
        "description": spec.description or spec.id,
        "default_reasoning_level": "medium" if spec.thinking else "none",
        "supported_reasoning_levels": [{"effort": e, "description": _LEVELS[e]}
                                       for e in EFFORTS],
        "shell_type": "shell_command",
        "visibility": "list",
        "supported_in_api": True,
        "priority": priority,
        "model_messages": {"instructions_template": INSTRUCTIONS},
        "supports_reasoning_summaries": True,
        "support_verbosity": False,
        "apply_patch_tool_type": "freeform",
        "web_search_tool_type": "text",
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "supports_parallel_tool_calls": True,
        "experimental_supported_tools": [],
        "input_modalities": ["text", "image"],
        "include_skills_usage_instructions": True,
    }
    if spec.context_length:
        entry["context_window"] = spec.context_length
    return entry


def models_body(specs: list[ModelSpec]) -> dict:
    return {"models": [model_info(s, i) for i, s in enumerate(specs)]}
