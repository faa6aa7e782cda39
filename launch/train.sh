#!/usr/bin/env bash
# Convenience wrapper: set up .venv, then run 'distnn train' on NP MPI ranks (default 2).
#   ./launch/train.sh --config digits_cnn --set train.epochs=10
#   NP=4 ./launch/train.sh --config mnist_mlp --set data.path=/data/mnist
set -euo pipefail
cd "$(dirname "$0")/.."
DISTNN_EXTRAS="mpi,data,viz" source launch/_venv.sh
exec mpiexec -n "${NP:-2}" python -m distnn train "$@"
