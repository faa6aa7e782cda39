#!/usr/bin/env bash
# The main job on a fresh clone: set up .venv (first run only), then train the
# digits_mlp config on 2 MPI ranks and print the test accuracy and where the
# run directory and the loss/accuracy plot are.
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
python - "$OUT" <<'PY'
import json, os, sys
run = sys.argv[1]
s = json.load(open(os.path.join(run, "summary.json")))
print()
print(f"test accuracy: {s['test_accuracy'] * 100:.2f}%  (test loss {s['test_loss']:.4f}, "
      f"{s['epochs_run']} epochs, best epoch {s['best_epoch']}, {s['world_size']} ranks, {s['wall_time']:.1f}s)")
print(f"run directory: {os.path.abspath(run)}")
print(f"curves:        {os.path.abspath(os.path.join(run, 'curves.png'))}")
print(f"evaluate:      python -m distnn evaluate {run}")
PY
