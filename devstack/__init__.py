"""Project-local and throwaway services for the demo, the tests and the benchmarks:
PostgreSQL 15 with TimescaleDB, and Mosquitto. Never the machine's own services."""
