"""kimi-gateway: an OpenAI-compatible gateway in front of a Kimi web account."""

__version__ = "0.1.0"
