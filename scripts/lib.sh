# Sourced by every script: one place that says where state, caches and environments live.
# shellcheck shell=bash
set -euo pipefail

GUESSME_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GUESSME_ROOT
# The clone's paths come from guessme_contracts.layout, their one definition (standard library only:
# the system python3 runs it before any environment exists). It prints `export NAME=VALUE` lines:
# GUESSME_STATE (all mutable state of this clone, `make clean` deletes it; an exported one wins), the
# environments' folders and ML_PYTHON, GUESSME_RUN_DIR (PID and status files), the tools' state
# folders (AIRFLOW_HOME, RAY_AUTH_TOKEN_PATH and DVC_SITE_CACHE_DIR keep an exported value), and the
# local stack's ports (an exported one wins).
command -v python3 >/dev/null || { echo "[guessme] error: python3 is needed (3.9 or newer)" >&2; exit 1; }
layout_exports="$(PYTHONPATH="$GUESSME_ROOT/libs/guessme-contracts/src" python3 -m guessme_contracts.layout shell)" ||
  { echo "[guessme] error: guessme_contracts.layout failed" >&2; exit 1; }
eval "$layout_exports"
unset layout_exports
# Environments are shared between clones, keyed by the hash of their lock file.
export GUESSME_CACHE="${GUESSME_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/guessme}"

# The project's code is put on the path, not installed, so a cached venv serves every clone.
export PYTHONPATH="$GUESSME_ROOT/libs/guessme-contracts/src:$GUESSME_ROOT/libs/guessme-core/src:$GUESSME_ROOT/apps/guessme-train/src:$GUESSME_ROOT/apps/guessme-serve/src:$GUESSME_ROOT/pipelines:$GUESSME_ROOT/localdev${PYTHONPATH:+:$PYTHONPATH}"

# Keep every tool's state inside the clone, never in $HOME or /tmp.
ray_dir="$GUESSME_RAY_TMP"
if [[ -z "${RAY_TMPDIR:-}" && ${#ray_dir} -gt 34 ]]; then
  # Unix socket paths are capped at 107 bytes and Ray nests up to 72 more under its temp dir
  # (/ray/session_<date>_<time>_<us>_<pid>/sockets/dash_MetricsHead): a clone deeper than a few
  # folders gets a short per-clone folder instead, linked from $GUESSME_RAY_TMP (`make clean` removes both).
  short="/tmp/guessme-ray-$(printf %s "$GUESSME_STATE" | sha256sum | cut -c1-12)"
  mkdir -p "$short" "$GUESSME_STATE"
  [[ -L "$ray_dir" || ! -e "$ray_dir" ]] && ln -sfn "$short" "$ray_dir"
  ray_dir="$short"
fi
export RAY_TMPDIR="${RAY_TMPDIR:-$ray_dir}"
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
export RAY_USAGE_STATS_ENABLED=0
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export DVC_NO_ANALYTICS=1
# 2 shared cores: PyTorch's spinning OpenMP threads hurt more than they help.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export OMP_WAIT_POLICY=PASSIVE
export npm_config_update_notifier=false

# The local ports (GUESSME_*_PORT) came from the layout too; an exported one wins.
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$GUESSME_MLFLOW_PORT}"

mkdir -p "$GUESSME_STATE" "$RAY_TMPDIR"

log() { printf '\033[1;34m[guessme]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[guessme] error:\033[0m %s\n' "$*" >&2; exit 1; }
