"""Kimi's web protocol. Nothing in here knows an OpenAI name."""
