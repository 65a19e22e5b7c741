#!/usr/bin/env bash
# `make up`: set up what is missing, build the game, start the local platform (see localdev/guessme_local/stack.py).
# DETACH=1 returns once everything is healthy; otherwise Ctrl-C stops it all.
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit
scripts/setup.sh ml airflow node
if [[ ! -f apps/frontend/dist/index.html || -n "$(find apps/frontend/src apps/frontend/index.html -newer apps/frontend/dist/index.html -print -quit)" ]]; then
  log "building the game (apps/frontend/dist)"
  npm --prefix apps/frontend run --silent build >/dev/null
fi
export PATH="$ML_VENV/bin:$PATH"
exec "$ML_PYTHON" -m guessme_local.stack up ${DETACH:+--detach}
