#!/usr/bin/env bash
# The main job on a fresh clone: sets up .venv and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
DISTNN_EXTRAS="mpi,data,viz" source launch/_venv.sh
python launch/xor_demo.py
