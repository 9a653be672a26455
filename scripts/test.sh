#!/usr/bin/env bash
# Set up .venv if needed, then run the test suite (offline, a few minutes on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest -q tests "$@"
