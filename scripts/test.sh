#!/usr/bin/env bash
# Set up .venv if needed (and Debian's chromium for the report's browser test), then run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium (Debian) for the report's browser test..."
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "warning: could not install chromium; the browser test will be skipped"
    else
        echo "note: chromium is not installed (apt-get install chromium); the browser test will be skipped"
    fi
fi
exec .venv/bin/python -m pytest -q tests "$@"
