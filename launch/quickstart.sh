#!/usr/bin/env bash
# The main job on a fresh clone: set up .venv (first run only), then train the
# digits_mlp config on 2 MPI ranks; 'distnn train' prints the test accuracy
# and where the run directory and the loss/accuracy plot (curves.png) are.
#
#   ./launch/quickstart.sh                      # 2 ranks, built-in digits_mlp
#   NP=1 ./launch/quickstart.sh                 # 1 rank
#   ./launch/quickstart.sh --set train.epochs=5 # extra arguments go to 'distnn train'
set -euo pipefail
cd "$(dirname "$0")/.."
DISTNN_EXTRAS="mpi,data,viz" source launch/_venv.sh
NP="${NP:-2}"
OUT="${OUT:-runs/quickstart-$(date +%Y%m%d-%H%M%S)}"
echo "[distnn] training digits_mlp on $NP MPI rank(s) -> $OUT" >&2
# --quiet: one log line per epoch instead of a progress bar (readable in any terminal or log file).
mpiexec -n "$NP" python -m distnn train --config digits_mlp --out "$OUT" --quiet "$@"
echo
echo "next: .venv/bin/python -m distnn evaluate $OUT      # confusion matrix, per-class precision/recall/F1"
