# Guessme: the two commands are `make up` and `make test`. Everything else is a building block.
SHELL := bash
.DEFAULT_GOAL := help
.PHONY: help up down status test bench setup lock dvc-lock clean lint fmt cluster cluster-down

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

up: ## the whole local platform: data, training, MLflow, promotion by Git, Ray Serve, the game
	@scripts/up.sh

down: ## stop everything `make up` started
	@scripts/down.sh

status: ## the running stack: commits, committed vs served model, health, services (non-zero if out of step)
	@scripts/status.sh

test: ## every test level and quality gate, ending in one summary line
	@scripts/test.sh

cluster: ## the platform on a local kind cluster with Argo CD (needs Docker and kind; MODE=tilt for Tilt)
	@GUESSME_CLUSTER_MODE="$(MODE)" scripts/cluster.sh up

cluster-down: ## delete the kind cluster `make cluster` created (and no other)
	@scripts/cluster.sh down

bench: ## speed benchmarks (print figures and ratios)
	@scripts/bench.sh

setup: ## build/link the cached environments (idempotent)
	@scripts/setup.sh

lock: ## re-resolve requirements/*.in into requirements/*.lock
	@scripts/lock.sh

dvc-lock: ## run the changed pipeline stages so dvc.lock matches the code and params (then commit it)
	@scripts/dvc-lock.sh

fmt: ## format Python code
	@scripts/setup.sh ml && source scripts/lib.sh && "$$ML_VENV/bin/ruff" format . && "$$ML_VENV/bin/ruff" check --fix .

clean: down ## reset all local state ($GUESSME_STATE, default .guessme/); cached environments stay
	@source scripts/lib.sh && state="$$(realpath "$$GUESSME_STATE")" \
	  && { [[ "$$state" != / && "$$state" != "$$(realpath ~)" ]] || die "refusing to delete $$state"; } \
	  && { if [[ -L "$$GUESSME_RAY_TMP" ]]; then rm -rf "$$(readlink "$$GUESSME_RAY_TMP")"; fi; } \
	  && echo "rm -rf $$state" && rm -rf "$$state"
