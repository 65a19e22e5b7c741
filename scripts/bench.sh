#!/usr/bin/env bash
# `make bench`: the speed benchmarks; each prints its figures and ratios against a baseline of the same run.
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit
scripts/setup.sh ml
exec "$ML_PYTHON" -m pytest -m benchmark -s -p no:cacheprovider tests/benchmarks ${PYTEST_ARGS:-}
