#!/usr/bin/env bash
# Submit slurm/train.sbatch only if the job would start: `distnn train --check` first, here, for the
# number of ranks the job will have; a bad config key or value, a bad data file, a batch that does
# not split over the ranks, a run directory that would clash or a --resume that would fail is refused
# now (exit 2, nothing queued), not in the job's output after it waited for its nodes.
#
#   slurm/submit.sh                                              # digits_mlp, 2 ranks
#   slurm/submit.sh -n 4 -- --config digits_cnn --set train.epochs=5
#   slurm/submit.sh -N 2 -n 16 --time=2:00:00 -- --config mnist_mlp --set data.path=/data/mnist
#   DISTNN_OUT=runs/cnn1 slurm/submit.sh -n 4 -- --config digits_cnn   # continue (or start) runs/cnn1
#
# Arguments: sbatch's options, then `--`, then train's arguments (both start with dashes, so the `--`
# says where one ends; with no `--` every argument is sbatch's). They reach sbatch unchanged:
#   sbatch SBATCH_OPTIONS slurm/train.sbatch TRAIN_ARGUMENTS
# and sbatch's own line ("Submitted batch job N") is printed on stdout; the check's summary goes to
# stderr. The ranks checked are sbatch's -n/--ntasks, else train.sbatch's own --ntasks (2);
# --ntasks-per-node alone does not change them (sbatch lets the script's --ntasks win).
# As train.sbatch, it refuses --out and --resume among train's arguments (its own loop decides:
# DISTNN_SBATCH_ARGS_ONLY=1 runs only that part of it), and checks the run directory the job will
# use with --resume auto: $DISTNN_OUT, or a new runs/slurm-<job id>.
# The check runs on this machine, in this directory. What only the job's nodes can have is noted
# ("not checked on this host: ...", checked when the job starts) and submitted: no GPU here for a
# run.device = "gpu" config, a data path outside this directory that does not exist here (the nodes'
# own disks, per-rank {rank} copies: every rank's file that is here is checked). --check-strict among
# train's arguments (taken out of the job's) or DISTNN_CHECK_STRICT=1 refuses those too (train --check
# --check-strict). A data path in this directory (a relative one) is the job's too: refused if missing.
# DISTNN_ROOT: the repository (default: this script's); DISTNN_PYTHON: the python that checks
# (default: the repository's .venv/bin/python, which the job runs too). sbatch runs with
# DISTNN_ROOT set, so the job finds the repository from any submit directory.
set -euo pipefail
die() { echo "distnn: error: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

ROOT="${DISTNN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
SCRIPT="$ROOT/slurm/train.sbatch"
[ -f "$SCRIPT" ] && [ -d "$ROOT/distnn" ] || die "$ROOT is not the distnn repository (no slurm/train.sbatch): set DISTNN_ROOT=/path/to/distnn"
PY="${DISTNN_PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || die "$PY not found: create .venv once on a login node: cd '$ROOT' && ./launch/quickstart.sh (or: source launch/_venv.sh), or set DISTNN_PYTHON"

sbatch_args=() train_args=() separated="" check_strict="${DISTNN_CHECK_STRICT:-0}"
for arg in "$@"; do
  if [ -z "$separated" ] && [ "$arg" = "--" ]; then separated=1; continue; fi
  # (--check-strict is the check's, not the job's: train without --check refuses it)
  if [ -n "$separated" ] && [ "$arg" = "--check-strict" ]; then check_strict=1; continue; fi
  if [ -n "$separated" ]; then train_args+=("$arg"); else sbatch_args+=("$arg"); fi
done

# The ranks: the last -n/--ntasks among sbatch's options (as sbatch takes it), else the script's own.
ranks="$(sed -n 's/^#SBATCH --ntasks=\([0-9][0-9]*\).*/\1/p' "$SCRIPT" | head -1)"
ranks="${ranks:-1}"
for ((i = 0; i < ${#sbatch_args[@]}; i++)); do
  arg="${sbatch_args[$i]}"
  case "$arg" in
    -h|--help|--usage) usage; exit 0 ;;
    -n|--ntasks) [ $((i + 1)) -lt ${#sbatch_args[@]} ] || die "sbatch option $arg needs a number of tasks"
                 i=$((i + 1)); ranks="${sbatch_args[$i]}" ;;
    --ntasks=*) ranks="${arg#--ntasks=}" ;;
    -n*) ranks="${arg#-n}" ;;
  esac
done
case "$ranks" in
  ''|*[!0-9]*|0) die "sbatch -n/--ntasks must be a number of tasks >= 1, got '$ranks'" ;;
esac

DISTNN_SBATCH_ARGS_ONLY=1 bash "$SCRIPT" "${train_args[@]}"  # (its refusals of --out and --resume, exit 2)

out="${DISTNN_OUT:-runs/slurm-<job id>}"  # (the job's own: a name no run has yet, when DISTNN_OUT is unset)
echo "distnn: checking the job for $ranks rank(s) before submitting it" >&2
rc=0
strict=()
[ "$check_strict" = "1" ] && strict=(--check-strict)
"$PY" -m distnn train --check "${strict[@]}" --check-ranks "$ranks" --out "$out" --resume auto --quiet "${train_args[@]}" >&2 || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "distnn: not submitted: the check failed (exit $rc); nothing was queued" >&2
  exit 2
fi
DISTNN_ROOT="$ROOT" exec sbatch "${sbatch_args[@]}" "$SCRIPT" "${train_args[@]}"
