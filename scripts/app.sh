#!/usr/bin/env bash
# The patient app on this desktop with an emulated cuff and glucose meter (no Bluetooth
# needed). Start the system first with ./scripts/run.sh; see docs/mobile_app.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m mobile_app --simulated "$@"
