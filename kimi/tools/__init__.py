"""Tool calling by prompt: Kimi's web chat has no function calling, so the gateway describes
the client's tools in the prompt (contract) and finds the calls in the answer text (sieve).
Pure: no I/O; the turn runner drives it. Reference: dialects-and-tools.md §6."""

from .blocks import BadBlock, ParsedCall
from .contract import (EMPTY, NO_CALL, corrective_prompt, loop_note, neutralise, render_call,
                       render_contract, render_result, reminder)
from .sieve import MAX_BLOCK, ToolSieve

__all__ = ["BadBlock", "EMPTY", "MAX_BLOCK", "NO_CALL", "ParsedCall", "ToolSieve",
           "corrective_prompt", "loop_note", "neutralise", "render_call", "render_contract",
           "render_result", "reminder"]
