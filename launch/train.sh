#!/usr/bin/env bash
# Convenience wrapper: set up .venv (first run only), then run 'distnn train' on NP
# MPI ranks (default 2) in the directory you run it from: relative paths you give
# (--config my.toml, --out, --resume, --set data.path=...) are read from there, and
# the default run directory is ./runs/<config>-<timestamp> there too.
#   ./launch/train.sh --config digits_cnn --set train.epochs=10
#   NP=4 ./launch/train.sh --config mnist_mlp --set data.path=/data/mnist
#   NP=2 /path/to/distnn/launch/train.sh --config my.toml --out runs/mine
set -euo pipefail
NP="${NP:-2}"
case "$NP" in
  '' | *[!0-9]* | 0*) echo "[distnn] error: NP must be a whole number of MPI ranks >= 1, got '$NP'" >&2; exit 2 ;;
esac
DISTNN_EXTRAS="mpi,data,viz" source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec "$VENV/bin/mpiexec" -n "$NP" "$VENV/bin/python" -m distnn train "$@"
