#!/usr/bin/env bash
# `make status`: the local stack at a glance (guessme_local.status); non-zero when out of step or stopped.
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit
[[ -x "$ML_PYTHON" ]] || die "the ml environment is missing; run make setup"
exec "$ML_PYTHON" -m guessme_local.status
