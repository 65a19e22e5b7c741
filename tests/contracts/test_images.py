"""Drift: each image ships the first-party packages its code imports (the contracts among them).

The serving and training images copy each package's source and put it on PYTHONPATH (as scripts/lib.sh
does locally); the build context is cut down by the Dockerfile's .dockerignore and by the Tiltfile's
`only=` list, so a package missing from any of the four is missing at run time in the cluster only.
The Airflow image installs the contracts package: its DAG code arrives by git-sync of pipelines/ alone.
"""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
SOURCES = {  # first-party package -> its source folder in the clone
    "guessme_contracts": "libs/guessme-contracts/src",
    "guessme_core": "libs/guessme-core/src",
    "guessme_train": "apps/guessme-train/src",
    "guessme_serve": "apps/guessme-serve/src",
    "guessme_pipeline": "pipelines",
}
IMAGES = {"apps/guessme-serve/Dockerfile": "guessme_serve", "apps/guessme-train/Dockerfile": "guessme_train"}
_IMPORT = re.compile(r"^\s*(?:from|import)\s+(guessme_\w+)", re.MULTILINE)


def imports(package: str, root: Path = REPO) -> set[str]:
    """The first-party packages `package` needs at run time, itself included (followed transitively)."""
    needed, todo = set(), [package]
    while todo:
        pkg = todo.pop()
        if pkg in needed:
            continue
        needed.add(pkg)
        folder = root / SOURCES[pkg] / pkg
        for path in folder.rglob("*.py"):
            todo += [name for name in _IMPORT.findall(path.read_text()) if name in SOURCES]
    return needed


def instructions(dockerfile: Path) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    lines = dockerfile.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    return [" ".join(i.split()) for i in text.replace("\\\n", " ").splitlines() if i.strip()]


def shipped(dockerfile: Path, root: Path = REPO) -> dict[str, set[str]]:
    """What the image copies, what its PYTHONPATH names (as repo paths), what the context lets in."""
    steps = instructions(dockerfile)
    copied = {s.split()[-2] for s in steps if s.startswith("COPY ") and len(s.split()) == 3}
    env = " ".join(s for s in steps if s.startswith("ENV "))
    match = re.search(r"PYTHONPATH=(\S+)", env)
    pythonpath = {p.removeprefix("/app/") for p in match[1].split(":")} if match else set()
    ignore = (dockerfile.parent / f"{dockerfile.name}.dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    tilt = (root / "Tiltfile").read_text()
    call = next(c for c in tilt.split("docker_build(") if f'dockerfile="{dockerfile.relative_to(root)}"' in c)
    only_list = re.search(r"only=\[(.*?)\]", call, re.DOTALL)
    only = set(re.findall(r'"([^"]+)"', only_list[1])) if only_list else set()
    return {"COPY": copied, "PYTHONPATH": pythonpath, ".dockerignore": allowed, "Tiltfile only=": only}


def missing_sources(dockerfile: str, root: Path = REPO) -> list[str]:
    needed = sorted(SOURCES[pkg] for pkg in imports(IMAGES[dockerfile], root))
    return [
        f"{where} lacks {src}"
        for where, paths in shipped(root / dockerfile, root).items()
        for src in needed
        if src not in paths
    ]


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_an_image_ships_every_package_its_code_imports(dockerfile: str) -> None:
    assert "guessme_core" in imports(IMAGES[dockerfile])
    assert missing_sources(dockerfile) == []


def test_the_serving_image_ships_the_contracts() -> None:
    assert "guessme_contracts" in imports("guessme_serve")  # the model-URI grammar, at least


def test_a_package_left_out_is_caught(tmp_path: Path) -> None:
    for rel in ["Tiltfile", *SOURCES.values(), "apps/guessme-serve/Dockerfile"]:
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / rel).is_dir():
            target.symlink_to(REPO / rel)
        else:
            target.write_text((REPO / rel).read_text())
    ignore = "apps/guessme-serve/Dockerfile.dockerignore"
    (tmp_path / ignore).write_text((REPO / ignore).read_text().replace("!libs/guessme-contracts/src\n", ""))
    assert missing_sources("apps/guessme-serve/Dockerfile", tmp_path) == [
        ".dockerignore lacks libs/guessme-contracts/src"
    ]


def test_the_airflow_image_installs_what_the_pipeline_imports() -> None:
    """guessme_pipeline imports the contracts (and pydantic-settings): the image must install both."""
    assert "guessme_contracts" in imports("guessme_pipeline")
    steps = instructions(REPO / "platform/airflow/Dockerfile")
    copies = [s.split() for s in steps if s.startswith("COPY ")]
    target = next(words[-1] for words in copies if words[-2] == "libs/guessme-contracts")
    install = next(s for s in steps if s.startswith("RUN pip install") and target in s)
    assert "pydantic-settings" in install.split()
    ignore = (REPO / "platform/airflow/Dockerfile.dockerignore").read_text().splitlines()
    assert {"!libs/guessme-contracts/pyproject.toml", "!libs/guessme-contracts/src"} <= set(ignore)
