#!/usr/bin/env bash
# The whole test suite: single-process pytest, then the multi-rank tests under
# mpiexec with 2 and 3 ranks (pytest-mpi). Creates or reuses .venv.
# Extra arguments go to every pytest invocation (e.g. -x, -k name).
# Every test starts distnn's default generator, numpy's and Python's global RNGs and torch's from a seed
# of its own (tests/conftest.py: its node id), so it draws the same alone or in the full suite;
# DISTNN_TEST_SEED=N (default 0) gives every test other draws, to find a test that passes only by luck.
set -euo pipefail
cd "$(dirname "$0")/.."
DISTNN_EXTRAS="mpi,data,viz,dev" source launch/_venv.sh
# One BLAS thread a process: the suite runs on small shared machines, several processes at once.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
# Bytecode caches for distnn and the tests, kept in the environment, not beside the sources: with
# PYTHONDONTWRITEBYTECODE set (as on the CI machines), every pytest process (each xdist worker, each MPI rank)
# and every child interpreter a test starts compiled distnn and re-wrote every test module's asserts from source:
# collecting the suite took 26 s of CPU instead of 12, an `import distnn` 0.7 s instead of 0.25 (measured on a
# loaded 2-core machine).
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-$VENV/pycache}"
python -c "import torch" 2>/dev/null || echo "[distnn] note: torch is not installed; PyTorch-oracle tests will be skipped (.ci/run installs torch==2.13.0)"

# The single-process tests run on one worker process per core (pytest-xdist, at most 8; a test file's
# tests stay together on one worker); DISTNN_TEST_WORKERS=0 runs them in this process, one after another.
# (the cores this process may use: nproc would say 1, as it obeys the OMP_NUM_THREADS=1 set above)
workers="${DISTNN_TEST_WORKERS:-$(python -c "import os; print(len(os.sched_getaffinity(0)))" 2>/dev/null || echo 1)}"
[ "$workers" -gt 8 ] && workers=8
parallel=()
if [ "$workers" -gt 1 ] && python -c "import xdist" 2>/dev/null; then
  parallel=(-n "$workers" --dist loadfile)
fi

status=0
echo "=== single-process tests${parallel:+ (${workers} worker processes)}"
python -m pytest -q -p no:cacheprovider "${parallel[@]}" "$@" tests || status=$?
# The ranks collect only the files that hold mpi-marked tests (listed once here, by pytest itself): each of the
# five ranks of the two phases collected all ~44,000 tests to run ~150 (12 s of CPU a rank with the caches
# above). If the listing fails (a file that does not import) or lists no file, the ranks collect everything, as
# before, and report it.
mpi_files=()
if listing="$(python -m pytest -q -p no:cacheprovider --co -m mpi "$@" tests 2>/dev/null)"; then
  mapfile -t mpi_files < <(printf '%s\n' "$listing" | awk -F'::' '/^$/ {exit} /::/ && !seen[$1]++ {print $1}')
  [ "${#mpi_files[@]}" -gt 0 ] || mpi_files=(tests)
else
  mpi_files=(tests)
fi
for n in 2 3; do
  echo "=== multi-rank tests under mpiexec -n $n"
  # Each rank runs the mpi-marked tests; pytest-mpi skips those needing more ranks.
  rc=0
  timeout 900 mpiexec -n "$n" python -m pytest -q -p no:cacheprovider --with-mpi -m mpi "$@" "${mpi_files[@]}" || rc=$?
  # 5 = no tests collected (e.g. a -k filter that matches no multi-rank test).
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then status=$rc; fi
done
exit $status
