# Guessme: the two commands are `make up` and `make test`. Everything else is a building block.
SHELL := bash
.DEFAULT_GOAL := help
.PHONY: help up down status test bench setup lock clean lint fmt

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

up: ## the whole local platform: data, training, MLflow, promotion by Git, Ray Serve, the game
	@scripts/up.sh

down: ## stop everything `make up` started
	@scripts/down.sh

status: ## the running stack: commits, committed vs served model, health, services (non-zero if out of step)
	@scripts/status.sh

test: ## every test level and quality gate, ending in one summary line
	@scripts/test.sh

bench: ## speed benchmarks (print figures and ratios)
	@scripts/bench.sh

setup: ## build/link the cached environments (idempotent)
	@scripts/setup.sh

lock: ## re-resolve requirements/*.in into requirements/*.lock
	@scripts/lock.sh

fmt: ## format Python code
	@scripts/setup.sh ml && .guessme/venvs/ml/bin/ruff format . && .guessme/venvs/ml/bin/ruff check --fix .

clean: down ## reset all local state (.guessme/); cached environments stay
	@if [ -L .guessme/ray ]; then rm -rf "$$(readlink .guessme/ray)"; fi
	rm -rf .guessme
