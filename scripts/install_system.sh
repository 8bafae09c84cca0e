#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing, and builds the
# TimescaleDB extension for PostgreSQL 15 when it is absent. A second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
    postgresql-15 postgresql-server-dev-15 postgresql-contrib
    mosquitto mosquitto-clients
    build-essential cmake dpkg-dev libssl-dev
    python3-venv python3-dev
    chromium chromium-driver fonts-noto-cjk
    libgl1-mesa-dri libegl1 libmtdev1
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "[setup] installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
else
    echo "[setup] Debian packages present"
fi

# npm installs the web UI's chart library; any Node.js with npm will do, so Debian's is
# added only when none is on the PATH.
if ! command -v npm >/dev/null 2>&1; then
    echo "[setup] installing Debian's npm"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# The Debian postgresql package starts a system cluster; ours are project-local, and the
# machine's own service is left exactly as it was.

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ -f "$($PG_CONFIG --sharedir)/extension/timescaledb.control" ]; then
    echo "[setup] TimescaleDB extension present"
else
    bash scripts/build_timescaledb.sh
fi
