"""Client-facing dialects. Nothing in here knows a Kimi wire name."""
