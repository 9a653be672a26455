#!/usr/bin/env bash
# Set up .venv if needed, then run the whole pipeline on example/ and write output/index.html.
# Any step can be re-run alone; finished outputs are kept and skipped on a re-run.
# On a CPU one pair takes several minutes, so by default the example stylizes the mesh with one style;
# arguments are passed to run.py instead (e.g. --style astronaut_cartoon, or --pairs all for every style).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
PY=.venv/bin/python
echo "== 2. rendering";        $PY rendering.py
echo "== 3. correspondences";  $PY correspondences.py
[ $# -gt 0 ] || set -- --style astronaut_caricature
echo "== 4. stylization and reconstruction"; $PY run.py "$@"
echo "== 5. smoothing";        $PY smooth.py
echo "== report";              $PY report.py
echo "report: $(pwd)/output/index.html"
