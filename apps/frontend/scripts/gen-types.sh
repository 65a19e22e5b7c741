#!/usr/bin/env bash
# `npm run gen:types`: the front end's types from the server. Exports the contracts' JSON Schemas
# (committed: libs/guessme-contracts/src/guessme_contracts/schemas/) and the serve app's OpenAPI
# document (built offline: no Ray, no model), then compiles both into src/generated/ (gen-types.mjs).
# Run it after changing a WebSocket message, a drawing limit or a REST body, and commit the result.
source "$(dirname "$0")/../../../scripts/lib.sh"
frontend="$GUESSME_ROOT/apps/frontend"
schemas="$GUESSME_ROOT/libs/guessme-contracts/src/guessme_contracts/schemas"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$ML_PYTHON" -m guessme_contracts.json_schemas "$schemas" >/dev/null
"$ML_PYTHON" -m guessme_serve.openapi "$tmp/openapi.json"
node "$frontend/scripts/gen-types.mjs" --openapi "$tmp/openapi.json" --schemas "$schemas" --out "$frontend/src/generated"
log "regenerated $schemas and $frontend/src/generated"
