# Sourced by the launch and test scripts: create or reuse .venv at the repository
# root and install distnn into it (editable) with the extras given in $DISTNN_EXTRAS.
# Needs only python3 >= 3.11 and the package index; no system MPI. Works from any
# directory (it never changes the caller's): afterwards $VENV is the absolute path
# of the environment and its bin/ is first on PATH.
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
# Installed already: a stamp newer than pyproject.toml from an install with these extras or more
# (tests/run.sh installs mpi,data,viz,dev; the launch scripts then need nothing new).
installed() {
  local stamp have want
  for stamp in "$VENV"/.distnn-installed-*; do
    [ -f "$stamp" ] || continue
    [ "$REPO_ROOT/pyproject.toml" -nt "$stamp" ] && continue
    have="-${stamp##*/.distnn-installed-}-"
    for want in $(echo "$EXTRAS" | tr ',' ' '); do
      case "$have" in *"-$want-"*) ;; *) continue 2 ;; esac
    done
    return 0
  done
  return 1
}
if ! installed; then
  echo "[distnn] installing distnn[$EXTRAS] into $VENV (first run only)" >&2
  # A newer pip is nice to have, not needed: go on with the venv's own when it cannot be had.
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 ||
    echo "[distnn] note: could not upgrade pip; going on with the one in .venv" >&2
  if ! "$VENV/bin/python" -m pip install -q -e "$REPO_ROOT[$EXTRAS]" >&2; then
    echo "[distnn] error: installing distnn[$EXTRAS] into $VENV failed (pip's messages above): it needs the" \
         "package index (or a pip configuration pointing at one, e.g. PIP_INDEX_URL or a local wheel directory" \
         "with PIP_FIND_LINKS and PIP_NO_INDEX=1)" >&2
    exit 2
  fi
  touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
# BLAS threads are left to distnn (distnn/_threads.py: the host's cores divided by its ranks under a
# launcher), so a large host is not held to one thread a rank; tests/run.sh sets 1 for the shared test machines.
