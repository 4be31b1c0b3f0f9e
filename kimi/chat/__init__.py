"""The use case: pick an account, run the upstream stream, clean up after it."""
