# Sourced by the launch and test scripts: create or reuse .venv at the repository
# root and install distnn into it (editable) with the extras given in $DISTNN_EXTRAS.
# Needs only python3 >= 3.11 and the package index; no system MPI.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PY="${PYTHON:-python3}"
new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
if [ -x "$VENV/bin/python" ] && ! new_enough "$VENV/bin/python"; then
  # a .venv made by an older python (an earlier failed attempt): it would fail the install every time
  echo "[distnn] $VENV uses $("$VENV/bin/python" -V 2>&1); distnn needs >= 3.11: recreating it" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! new_enough "$PY"; then
    echo "[distnn] error: $PY is $("$PY" -V 2>&1 || echo missing); distnn needs python >= 3.11 (set PYTHON=python3.11 or newer)" >&2
    exit 2
  fi
  echo "[distnn] creating virtual environment in $VENV" >&2
  "$PY" -m venv "$VENV" || { echo "[distnn] error: '$PY -m venv' failed (on Debian/Ubuntu: install python3-venv)" >&2; rm -rf "$VENV"; exit 2; }
fi
EXTRAS="${DISTNN_EXTRAS:-mpi,data,viz}"
STAMP="$VENV/.distnn-installed-$(echo "$EXTRAS" | tr ',' '-')"
# Reinstall when pyproject.toml changed since the last install with these extras.
if [ ! -f "$STAMP" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$STAMP" ]; then
  echo "[distnn] installing distnn[$EXTRAS] into .venv (first run only)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -e "$REPO_ROOT[$EXTRAS]" >&2
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
# Two cores per machine here: one BLAS thread per rank, or ranks fight over cores.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
