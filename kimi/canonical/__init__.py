"""Our own language between the client dialects and the upstream protocol. No I/O here."""
