"""Durable state in SQLite: account tokens and conversations."""
