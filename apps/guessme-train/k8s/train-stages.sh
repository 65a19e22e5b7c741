#!/bin/sh
# GENERATED from dvc.yaml by `python -m guessme_train.rayjob_stages --repo .`: edit dvc.yaml,
# then rerun it (tests/train/test_rayjob_stages.py fails while this file is stale).
#
# The training RayJob's entrypoint: the stages of dvc.yaml, in DVC's order, run by the Ray job driver
# on the head pod (`ray job submit` in the submitter pod only submits and follows the logs). The image's
# root filesystem is read-only: every path dvc.yaml names goes under GUESSME_WORK, the head's writable
# emptyDir, and params.yaml is the image's (GUESSME_PARAMS).
# One script rather than `a && b` in spec.entrypoint: KubeRay splices the entrypoint unquoted into
# the submitter's `sh -c`, so anything after `&&` would run in the submitter instead of on Ray.
set -eu

work="${GUESSME_WORK:?GUESSME_WORK must name a writable folder}"
params="${GUESSME_PARAMS:-/app/params.yaml}"
cd "$work"

# stage fetch
python -m guessme_train.fetch --params "$params" --out "$work/data/raw/mnist.npz"

# stage player
python -m guessme_train.player --params "$params" --player-dir "$work/data/player" \
    --out "$work/data/prepared/player.npz" --report "$work/reports/player.json"

# stage prepare
python -m guessme_train.prepare --params "$params" --raw "$work/data/raw/mnist.npz" \
    --player "$work/data/prepared/player.npz" --out-dir "$work/data/prepared" \
    --report "$work/reports/data.json"

# stage train
python -m guessme_train.train --params "$params" --data "$work/data/prepared" \
    --model "$work/models/model.pt" --history "$work/models/history.json"

# stage evaluate
python -m guessme_train.evaluate --model "$work/models/model.pt" \
    --history "$work/models/history.json" --test "$work/data/prepared/test.npz" \
    --metrics "$work/metrics.json" --plots "$work/reports/plots" --figures "$work/reports/figures"

# stage register
python -m guessme_train.register --params "$params" --model "$work/models/model.pt" \
    --history "$work/models/history.json" --metrics "$work/metrics.json" \
    --raw "$work/data/raw/mnist.npz" --data "$work/data/prepared" --reports "$work/reports" \
    --out "$work/reports/registered.json"
