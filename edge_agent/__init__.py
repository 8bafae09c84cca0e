"""The edge agent: reads devices, keeps every reading in a durable outbox, syncs over MQTT."""
