"""MQTT ingest: take readings batches apart, store them exactly once, acknowledge after commit."""
