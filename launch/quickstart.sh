#!/usr/bin/env bash
# The main job on a fresh clone: set up .venv (first run only), then train the
# digits_mlp config on 2 MPI ranks; 'distnn train' prints the test accuracy
# and where the run directory and the loss/accuracy plot (curves.png) are.
#
#   ./launch/quickstart.sh                      # 2 ranks, built-in digits_mlp
#   NP=1 ./launch/quickstart.sh                 # 1 rank
#   OUT=runs/first ./launch/quickstart.sh       # choose the run directory
#   ./launch/quickstart.sh --set train.epochs=5 # extra arguments go to 'distnn train'
#
# Environment:
#   NP   number of MPI ranks (default 2)
#   OUT  run directory (default: runs/quickstart-<timestamp> in the repository,
#        i.e. <repo>/runs/...); '--out DIR' among the arguments does the same.
# Relative paths (OUT, --config FILE, --set data.path=DIR) are read from the
# directory you run the script from.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Shell-quoted, for a command the user can paste (paths with spaces or quotes).
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
for arg in "$@"; do
  if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    if [ -x "$ROOT/.venv/bin/python" ]; then
      printf "\nThe options of 'distnn train':\n\n"
      exec "$ROOT/.venv/bin/python" -m distnn train --help
    fi
    exit 0
  fi
done
NP="${NP:-2}"
case "$NP" in
  '' | *[!0-9]* | 0*) echo "[distnn] error: NP must be a whole number of MPI ranks >= 1, got '$NP'" >&2; exit 2 ;;
esac
OUT="${OUT:-$ROOT/runs/quickstart-$(date +%Y%m%d-%H%M%S)}"
args=()
while [ $# -gt 0 ]; do  # an --out DIR among the arguments is the run directory (the next: hint names it)
  case "$1" in
    --out) [ $# -ge 2 ] || { echo "[distnn] error: --out needs a directory" >&2; exit 2; }; OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
DISTNN_EXTRAS="mpi,data,viz" source "$ROOT/launch/_venv.sh"
echo "[distnn] training digits_mlp on $NP MPI rank(s) -> $OUT" >&2
# --quiet: one log line per epoch instead of a progress bar (readable in any terminal or log file).
"$VENV/bin/mpiexec" -n "$NP" "$VENV/bin/python" -m distnn train --config digits_mlp --out "$OUT" --quiet \
  ${args[@]+"${args[@]}"}
echo
echo "next: $(quote "$VENV/bin/python") -m distnn evaluate $(quote "$OUT")      # confusion matrix, per-class precision/recall/F1"
