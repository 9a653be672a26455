#!/usr/bin/env bash
# Set up .venv if needed, then run the whole pipeline on example/ and write output/index.html.
# Any step can be re-run alone; finished outputs are kept and skipped on a re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
PY=.venv/bin/python
echo "== 2. rendering";        $PY rendering.py
echo "== 3. correspondences";  $PY correspondences.py
echo "== 4. stylization and reconstruction"; $PY run.py "$@"
echo "== 5. smoothing";        $PY smooth.py
echo "== report";              $PY report.py
echo "report: $(pwd)/output/index.html"
