"""The HTTP API (FastAPI): health, alerts, readings, dead letters, edges."""
