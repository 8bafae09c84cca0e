#!/usr/bin/env bash
# The run command: set up what is missing, then start the whole system locally with
# simulated devices and demo data, and print the URL to open. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m devstack.demo "$@"
