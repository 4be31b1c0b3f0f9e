"""The operator console: accounts, API keys, traffic and conversations in the browser."""
