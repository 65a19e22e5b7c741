#!/bin/sh
# The training RayJob's entrypoint: the stages of dvc.yaml, in order, run by the Ray job driver on
# the head pod (`ray job submit` in the submitter pod only submits and follows the logs). The image's
# root filesystem is read-only: every output goes under GUESSME_WORK, the head's writable emptyDir,
# and each CLI gets its paths explicitly (their defaults are relative to the working directory).
# One script rather than `a && b` in spec.entrypoint: KubeRay splices the entrypoint unquoted into
# the submitter's `sh -c`, so anything after `&&` would run in the submitter instead of on Ray.
set -eu

work="${GUESSME_WORK:?GUESSME_WORK must name a writable folder}"
params="${GUESSME_PARAMS:-/app/params.yaml}"
cd "$work"

python -m guessme_train.fetch --params "$params" --out "$work/data/raw/mnist.npz"
# The players' rounds (none on a fresh cluster: an empty set) become a data version like dvc.yaml's.
python -m guessme_train.player --params "$params" --player-dir "$work/data/player" \
    --out "$work/data/prepared/player.npz" --report "$work/reports/player.json"
python -m guessme_train.prepare --params "$params" --raw "$work/data/raw/mnist.npz" \
    --player "$work/data/prepared/player.npz" --out-dir "$work/data/prepared" --report "$work/reports/data.json"
python -m guessme_train.train --params "$params" --data "$work/data/prepared" \
    --model "$work/models/model.pt" --history "$work/models/history.json"
python -m guessme_train.evaluate --model "$work/models/model.pt" --history "$work/models/history.json" \
    --test "$work/data/prepared/test.npz" --metrics "$work/metrics.json" \
    --plots "$work/reports/plots" --figures "$work/reports/figures"
python -m guessme_train.register --params "$params" --model "$work/models/model.pt" \
    --history "$work/models/history.json" --metrics "$work/metrics.json" \
    --raw "$work/data/raw/mnist.npz" --data "$work/data/prepared" \
    --reports "$work/reports" --out "$work/reports/registered.json"
