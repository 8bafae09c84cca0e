"""TimescaleDB access: the schema's one migration path and the stores over it."""
