"""The carebridge cloud: MQTT ingest, TimescaleDB storage, clinical alerts and the HTTP API."""
