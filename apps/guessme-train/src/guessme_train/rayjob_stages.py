"""The training RayJob's entry script (apps/guessme-train/k8s/train-stages.sh), generated from dvc.yaml:

    python -m guessme_train.rayjob_stages --repo .            # rewrite the script
    python -m guessme_train.rayjob_stages --repo . --check    # exit 1 if it is stale

dvc.yaml is the one list of stages, their commands and their paths; the image has no DVC (and no Git
checkout to run `dvc repro` in), so the job runs the same commands from a script written here. DVC
itself reads dvc.yaml (its own `${...}` interpolation) and orders the stages (its dependency graph,
dvc.yaml's order among independent ones). Each command must be `${py} -m <module> --flag value ...`:
`${py}` becomes the image's `python`, `params.yaml` the job's params file, and every other value, a path
relative to the repository root, the same path under the job's writable work folder.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

SCRIPT = Path("apps/guessme-train/k8s/train-stages.sh")
INTERPRETER_VAR = "py"  # dvc.yaml's var that names the ML interpreter (the image's `python`)
PARAMS_FILE = "params.yaml"

HEADER = """\
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
"""


class StageScriptError(ValueError):
    """dvc.yaml holds a stage the job cannot run as a plain command; the message names it."""


def ordered_stages(repo: Path) -> list[tuple[str, str]]:
    """(name, command with DVC's interpolation done) of every dvc.yaml stage, in an order DVC's graph
    allows (a stage after those whose outputs it reads), dvc.yaml's own order among the rest."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        stages = [s for s in dvc.index.stages if s.path_in_repo == "dvc.yaml"]
        declared = [s.name for s in stages]
        graph = dvc.index.graph.subgraph(stages).reverse()  # DVC's edges point from a stage to its deps
        order = nx.lexicographical_topological_sort(graph, key=lambda s: declared.index(s.name))
        return [(s.name, s.cmd) for s in order]


def job_command(name: str, cmd: str, interpreter: str) -> str:
    """One stage's command as the job runs it (see the module docstring)."""
    if not cmd.startswith(interpreter + " "):
        raise StageScriptError(f"stage {name}: its cmd must start with ${{{INTERPRETER_VAR}}}, got {cmd!r}")
    args = shlex.split(cmd[len(interpreter) :])
    if len(args) < 2 or args[0] != "-m" or len(args) % 2:
        raise StageScriptError(f"stage {name}: expected `-m <module> --flag value ...`, got {args}")
    words = ["python", "-m", args[1]]
    for flag, value in zip(args[2::2], args[3::2], strict=True):
        if not flag.startswith("--") or value.startswith(("-", "/")) or ".." in Path(value).parts:
            raise StageScriptError(f"stage {name}: {flag} {value}: expected --flag <repository path>")
        words += [flag, '"$params"' if value == PARAMS_FILE else f'"$work/{value}"']
    return wrap(words)


def wrap(words: list[str], width: int = 100) -> str:
    """`words` on lines of at most `width` characters (a flag stays with its value), `\\`-continued."""
    pairs = [" ".join(words[:5]), *(" ".join(words[i : i + 2]) for i in range(5, len(words), 2))]
    lines = [pairs[0]]
    for pair in pairs[1:]:
        if len(lines[-1]) + 1 + len(pair) + 2 > width:
            lines.append("    " + pair)
        else:
            lines[-1] += " " + pair
    return " \\\n".join(lines)


def render(repo: Path) -> str:
    raw: dict[str, Any] = yaml.safe_load((repo / "dvc.yaml").read_text())
    variables = {k: v for entry in raw.get("vars", []) if isinstance(entry, dict) for k, v in entry.items()}
    if INTERPRETER_VAR not in variables:
        raise StageScriptError(f"dvc.yaml has no `{INTERPRETER_VAR}` var (the ML interpreter)")
    body = [
        f"# stage {name}\n{job_command(name, cmd, str(variables[INTERPRETER_VAR]))}\n"
        for name, cmd in ordered_stages(repo)
    ]
    return HEADER + "".join(f"\n{stage}" for stage in body)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True, help="the repository root (dvc.yaml's folder)")
    ap.add_argument("--check", action="store_true", help="exit 1 if the script differs from dvc.yaml's")
    args = ap.parse_args(argv)
    text, path = render(args.repo), args.repo / SCRIPT
    if args.check:
        if not path.is_file() or path.read_text() != text:
            sys.exit(f"{SCRIPT} is stale: run `python -m guessme_train.rayjob_stages --repo .`")
        return
    path.write_text(text)
    print(f"wrote {SCRIPT}")


if __name__ == "__main__":
    main()
