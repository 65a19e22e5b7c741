"""DVC set-up of the pipeline's scratch checkout (runs in the ML interpreter):

    python -m guessme_pipeline.dvc_workspace setup --main <working copy> --checkout <scratch checkout>
    python -m guessme_pipeline.dvc_workspace save --checkout <scratch checkout> --state <folder>

`setup` gives the scratch checkout's `.dvc/config.local` the main copy's local settings plus, as absolute
paths, its cache directory and every remote's URL (a relative `url` in the tracked `.dvc/config` would
point inside the scratch checkout), then checks out from that cache the outputs its dvc.lock names.

`save` keeps what the cache does not hold: dvc.lock and the `cache: false` outputs (metrics, reports,
the registration record). DVC's run-cache skips stages with such outputs, so the next run's checkout
starts from this state (guessme_pipeline.checkout copies it in before `setup`): `dvc repro` then sees
which stages are unchanged, as in a long-lived working copy, and an unchanged model is not registered
again.
"""

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dvc.repo import Repo

MANIFEST = "kept.json"  # the relative paths a state folder holds (guessme_pipeline.checkout reads it)


def setup(main: Path, checkout: Path) -> dict[str, Any]:
    with Repo(str(main)) as source:
        cache_dir = str(source.cache.local_cache_dir)
        # str(): a loaded path is a RelPath, which DVC would write back relative to the new config.
        remotes = {name: str(conf["url"]) for name, conf in source.config["remote"].items()}
    local_config = main / ".dvc" / "config.local"
    if local_config.is_file():  # credentials and other per-machine settings
        shutil.copyfile(local_config, checkout / ".dvc" / "config.local")
    with Repo(str(checkout)) as target, target.config.edit("local") as conf:
        conf.setdefault("cache", {})["dir"] = cache_dir
        for name, url in remotes.items():
            conf.setdefault("remote", {}).setdefault(name, {})["url"] = url
    with Repo(str(checkout)) as target:
        # Outputs the cache lacks are left missing: `dvc repro` recomputes those stages.
        changes = target.checkout(allow_missing=True)
    counts = {kind: len(paths) for kind, paths in (changes or {}).items()}
    return {"cache_dir": cache_dir, "remotes": remotes, "checkout": counts}


def save(checkout: Path, state: Path) -> dict[str, Any]:
    """Replace `state` with the checkout's dvc.lock and uncached outputs (same relative paths)."""
    with Repo(str(checkout)) as repo:
        uncached = [Path(out.fs_path) for out in repo.index.outs if not out.use_cache]
    kept = [checkout / "dvc.lock", *(p for p in uncached if p.exists())]
    state.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".dvc-state-", dir=state.parent))
    for path in kept:
        target = staging / path.relative_to(checkout)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target)
        else:
            shutil.copy2(path, target)
    kept_paths = [str(p.relative_to(checkout)) for p in kept]
    (staging / MANIFEST).write_text(json.dumps(kept_paths))
    old = state.with_name(state.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if state.exists():
        os.replace(state, old)
    os.replace(staging, state)  # a complete state or none (then the next run starts from dvc.lock at HEAD)
    shutil.rmtree(old, ignore_errors=True)
    return {"state": str(state), "kept": kept_paths}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = ap.add_subparsers(dest="command", required=True)
    setup_cmd = commands.add_parser("setup", help="share the main copy's cache; check out from it")
    setup_cmd.add_argument("--main", type=Path, required=True)
    setup_cmd.add_argument("--checkout", type=Path, required=True)
    save_cmd = commands.add_parser("save", help="keep dvc.lock and the uncached outputs for the next run")
    save_cmd.add_argument("--checkout", type=Path, required=True)
    save_cmd.add_argument("--state", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.command == "setup":
        result = setup(args.main.resolve(), args.checkout.resolve())
    else:
        result = save(args.checkout.resolve(), args.state.resolve())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
