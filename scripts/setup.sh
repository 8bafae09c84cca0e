#!/usr/bin/env bash
# Installs everything the project needs on a Debian bookworm machine; quick when nothing
# is missing. System packages and TimescaleDB: scripts/install_system.sh. Python: .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install_system.sh

stamp=.venv/.carebridge-deps
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating the virtualenv in .venv"
    python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "[setup] installing Python dependencies (pyproject.toml changed)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    echo "$wanted" > "$stamp"
else
    echo "[setup] Python dependencies up to date"
fi
