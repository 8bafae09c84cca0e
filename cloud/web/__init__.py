"""The staff web UI: server-rendered pages over the same data and access rules as the API."""
