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

# The web UI's chart library, from the npm registry into cloud/web/node_modules (never a
# CDN, never committed); `npm ci` follows the committed lock file exactly.
web_stamp=cloud/web/node_modules/.carebridge-lock
web_wanted=$(sha256sum cloud/web/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$web_stamp" 2>/dev/null)" != "$web_wanted" ]; then
    echo "[setup] installing the web UI's npm packages"
    (cd cloud/web && npm ci --no-audit --no-fund --loglevel=error)
    echo "$web_wanted" > "$web_stamp"
else
    echo "[setup] web UI npm packages up to date"
fi
