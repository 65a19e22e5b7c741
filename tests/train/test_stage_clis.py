"""Stage CLIs apart from the library: each dvc.yaml stage runs a thin argparse module whose every option
is required (dvc.yaml gives the values, so no default repeats a path), and no library module imports one."""

from __future__ import annotations

import ast
import importlib
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "apps/guessme-train/src/guessme_train"
# Options that are not paths dvc.yaml gives: run-time overrides, off unless asked for.
OPTIONAL = {"train": {"--backend", "--summary"}, "register": {"--run-name"}}


def stage_commands() -> dict[str, list[str]]:
    """module name -> the command's words after `-m guessme_train.<module>`, for every dvc.yaml stage."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out: dict[str, list[str]] = {}
    for stage in stages.values():
        words = shlex.split(stage["cmd"])
        module = words[words.index("-m") + 1].removeprefix("guessme_train.")
        out[module] = words[words.index("-m") + 2 :]
    return out


def add_argument_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
    ]


def cli_problems(module: str, source: str, given: list[str]) -> list[str]:
    """A default on an option, an option neither required nor a known override, a flag dvc.yaml gives
    that the CLI lacks, a required option dvc.yaml does not give."""
    found: list[str] = []
    options: dict[str, bool] = {}
    for call in add_argument_calls(ast.parse(source)):
        flag = call.args[0].value if call.args and isinstance(call.args[0], ast.Constant) else "?"
        keywords = {k.arg: k.value for k in call.keywords}
        if "default" in keywords:
            found.append(f"{module} {flag}: has a default (dvc.yaml gives the value)")
        required = isinstance(keywords.get("required"), ast.Constant) and keywords["required"].value is True
        if not required and flag not in OPTIONAL.get(module, set()):
            found.append(f"{module} {flag}: not required")
        options[flag] = required
    flags = {w for w in given if w.startswith("--")}
    found += [
        f"{module} {f}: dvc.yaml gives it, the CLI has no such option" for f in sorted(flags - set(options))
    ]
    found += [
        f"{module} {f}: required, dvc.yaml does not give it"
        for f, req in options.items()
        if req and f not in flags
    ]
    return found


def test_every_stage_cli_takes_its_paths_from_dvc_yaml() -> None:
    commands = stage_commands()
    assert list(commands) == ["fetch", "player", "prepare", "train", "evaluate", "register"]
    problems = [
        p
        for module, given in commands.items()
        for p in cli_problems(module, (PACKAGE / f"{module}.py").read_text(), given)
    ]
    assert problems == []


def test_a_stage_cli_with_a_default_or_an_unknown_flag_is_caught() -> None:
    source = (PACKAGE / "prepare.py").read_text()
    with_default = source.replace(
        '"--raw", type=Path, required=True', '"--raw", type=Path, default=Path("x")'
    )
    assert with_default != source
    given = stage_commands()["prepare"]
    problems = cli_problems("prepare", with_default, given)
    assert "prepare --raw: has a default (dvc.yaml gives the value)" in problems
    assert "prepare --raw: not required" in problems
    assert cli_problems("prepare", source, [*given, "--seed", "3"]) == [
        "prepare --seed: dvc.yaml gives it, the CLI has no such option"
    ]
    dropped = [w for w in given if w not in ("--report", "reports/data.json")]
    assert cli_problems("prepare", source, dropped) == [
        "prepare --report: required, dvc.yaml does not give it"
    ]


@pytest.mark.parametrize("module", list(stage_commands()))
def test_a_stage_cli_refuses_to_run_without_its_paths(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(f"guessme_train.{module}").main([])
    assert exit_info.value.code == 2
    assert "the following arguments are required" in capsys.readouterr().err


def test_no_library_module_imports_a_stage_cli() -> None:
    """The CLIs sit on top: the library (and the pipeline's comparison) never imports one."""
    stages = set(stage_commands())
    sources = [p for p in PACKAGE.glob("*.py") if p.stem not in stages]
    sources.append(REPO / "pipelines/guessme_pipeline/compare.py")
    offenders = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module.removeprefix("guessme_train.")} | {
                    a.name for a in node.names if node.module == "guessme_train"
                }
                if node.module.startswith("guessme_train") and names & stages:
                    offenders.append(f"{path.name}: from {node.module} import ...")
    assert offenders == []


def layout_problems(dvc: dict[str, Any]) -> list[str]:
    """Where dvc.yaml (which cannot import Python) disagrees with guessme_contracts.layout, the one
    definition of the ML interpreter's and the players' rounds' places in a clone."""
    from guessme_contracts import layout

    found: list[str] = []
    variables = {k: v for entry in dvc.get("vars", []) for k, v in entry.items()}
    interpreter = shlex.split(variables.get("py", ""))[-1:]
    if interpreter != [str(layout.ML_PYTHON_IN_CLONE)]:
        found.append(f"vars.py runs {interpreter}, not {layout.ML_PYTHON_IN_CLONE}")
    player = dvc["stages"]["player"]
    words = shlex.split(player["cmd"])
    given = words[words.index("--player-dir") + 1] if "--player-dir" in words else None
    if given != str(layout.PLAYER_DATA):
        found.append(f"stage player reads {given}, not {layout.PLAYER_DATA}")
    if str(layout.PLAYER_DATA) not in player["deps"]:
        found.append(f"stage player does not depend on {layout.PLAYER_DATA}")
    return found


def test_dvc_yaml_names_the_layouts_interpreter_and_player_folder() -> None:
    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert layout_problems(dvc) == []
    dvc["vars"][0]["py"] = dvc["vars"][0]["py"].replace(".guessme/venvs/ml", ".venv")
    dvc["stages"]["player"]["cmd"] = dvc["stages"]["player"]["cmd"].replace("data/player", "data/rounds")
    assert layout_problems(dvc) == [
        "vars.py runs ['.venv/bin/python'], not .guessme/venvs/ml/bin/python",
        "stage player reads data/rounds, not data/player",
    ]
