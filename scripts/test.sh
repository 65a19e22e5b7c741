#!/usr/bin/env bash
# `make test`: every quality gate and test level, in order, then one summary line.
# Each stage runs even if an earlier one failed, so one run shows everything that is wrong.
# Extra pytest arguments: PYTEST_ARGS="-x -k serve" make test
source "$(dirname "$0")/lib.sh"
cd "$GUESSME_ROOT" || exit

scripts/setup.sh ml airflow tools node chromium nginx
export PATH="$ML_VENV/bin:$PATH"
ml_pytest=(pytest_run "$ML_PYTHON")
airflow_pytest=(pytest_run "$AIRFLOW_VENV/bin/python")
pytest_run() { # python, args...: pytest; a PYTEST_ARGS filter that leaves a stage empty is not a failure
  local python="$1"; shift
  local rc=0
  "$python" -m pytest ${PYTEST_ARGS:-} "$@" || rc=$?
  if [[ $rc -eq 5 && -n "${PYTEST_ARGS:-}" ]]; then return 0; fi
  return $rc
}

passed=(); failed=(); start=$SECONDS
stage() { # name, command...
  local name="$1"; shift
  local t0=$SECONDS
  printf '\n\033[1m==> %s\033[0m\n' "$name"
  if "$@"; then passed+=("$name"); log "$name passed ($((SECONDS - t0)) s)"
  else failed+=("$name"); log "$name FAILED ($((SECONDS - t0)) s)"; fi
}

stage ruff-lint ruff check .
stage ruff-format ruff format --check .
stage mypy mypy
stage yamllint yamllint --strict .
stage vue-tsc npm --prefix apps/frontend run --silent typecheck
stage vitest npm --prefix apps/frontend run --silent test
stage frontend-build npm --prefix apps/frontend run --silent build
stage unit "${ml_pytest[@]}" -m unit
stage data "${ml_pytest[@]}" -m data  # the data tier on the committed data version (tests/data)
stage manifests "${ml_pytest[@]}" -m manifests
stage integration "${ml_pytest[@]}" -m "integration or e2e" --ignore=tests/pipeline
stage pipeline "${airflow_pytest[@]}" tests/pipeline
stage make-up "${ml_pytest[@]}" -m stack -s  # -s: it prints the clone-to-playable times

total=$(( ${#passed[@]} + ${#failed[@]} ))
if (( ${#failed[@]} == 0 )); then
  printf '\n\033[1;32mmake test: PASSED %d/%d stages in %d s\033[0m\n' "$total" "$total" "$((SECONDS - start))"
else
  printf '\n\033[1;31mmake test: FAILED %d/%d stages (%s) in %d s\033[0m\n' "${#failed[@]}" "$total" "${failed[*]}" "$((SECONDS - start))"
  exit 1
fi
