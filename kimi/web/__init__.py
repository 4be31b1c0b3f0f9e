"""HTTP plumbing shared by every dialect: errors, auth, SSE, request logs."""
