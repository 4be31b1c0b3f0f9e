"""Gateway state kept across requests (SQLite)."""
