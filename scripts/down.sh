#!/usr/bin/env bash
# `make down`: stop what `make up` started (recorded in $GUESSME_RUN_DIR, .guessme/run/).
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit
[[ -d "$GUESSME_RUN_DIR" ]] || exit 0
[[ -x "$ML_PYTHON" ]] || die "the ml environment is missing; run make setup"
exec "$ML_PYTHON" -m guessme_local.stack down
