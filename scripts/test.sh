#!/usr/bin/env bash
# The test command: set up what is missing, then lint, type-check and run the whole suite
# against real PostgreSQL+TimescaleDB, Mosquitto and bumble-emulated BLE devices.
# With no arguments it also measures line coverage of device_drivers and fails under 95 %;
# arguments go to pytest as they are (a subset of tests, -k, -x ...), without that gate.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "[test] ruff"
.venv/bin/ruff check .
echo "[test] mypy (protocols, device_drivers, edge_agent)"
.venv/bin/mypy
echo "[test] pytest"
if [ "$#" -eq 0 ]; then
    exec .venv/bin/python -m pytest --cov=device_drivers --cov-report=term-missing:skip-covered \
        --cov-fail-under=95
fi
exec .venv/bin/python -m pytest "$@"
