#!/usr/bin/env bash
# The test command: set up what is missing, then lint, type-check and run the whole suite
# against real PostgreSQL+TimescaleDB, Mosquitto and bumble-emulated BLE devices.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "[test] ruff"
.venv/bin/ruff check .
echo "[test] mypy (protocols, device_drivers, edge_agent)"
.venv/bin/mypy
echo "[test] pytest"
exec .venv/bin/python -m pytest "$@"
