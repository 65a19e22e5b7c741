"""The front end's generated types are the server's: a stale copy fails here.

Regenerates, into a temporary folder, exactly what `npm --prefix apps/frontend run gen:types`
writes (the contracts' JSON Schemas, the REST API's OpenAPI document, the TypeScript compiled from
both), and compares it with the committed files. A changed WebSocket message field, drawing limit or
REST body without a regeneration fails; so does a hand edit of a generated file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from guessme_contracts import json_schemas
from guessme_serve import openapi

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FRONTEND = REPO / "apps" / "frontend"
GENERATED = FRONTEND / "src" / "generated"
FIX = "stale: run `npm --prefix apps/frontend run gen:types` and commit the result"


def _differences(fresh: Path, committed: Path) -> list[str]:
    names = {p.name for p in fresh.iterdir()} | {p.name for p in committed.glob("*") if p.is_file()}
    return sorted(
        name
        for name in names
        if not (fresh / name).is_file()
        or not (committed / name).is_file()
        or (fresh / name).read_text() != (committed / name).read_text()
    )


def regenerate(out: Path) -> tuple[Path, Path]:
    """(schemas folder, TypeScript folder) written under `out` from the code as it is now."""
    schemas = out / "schemas"
    json_schemas.write(schemas)
    doc = out / "openapi.json"
    doc.write_text(openapi.render(openapi.document()))
    node = shutil.which("node")
    if node is None or not (FRONTEND / "node_modules" / "openapi-typescript").is_dir():
        pytest.fail("needs node and the front end's packages: scripts/setup.sh node")
    types = out / "generated"
    args = ["--openapi", str(doc), "--schemas", str(schemas), "--out", str(types)]
    subprocess.run([node, "scripts/gen-types.mjs", *args], cwd=FRONTEND, check=True, timeout=120)
    return schemas, types


def test_committed_schemas_and_typescript_are_regenerated(tmp_path: Path) -> None:
    schemas, types = regenerate(tmp_path)
    stale = _differences(schemas, json_schemas.SCHEMAS)
    assert not stale, f"{stale} in guessme_contracts/schemas {FIX}"
    stale = _differences(types, GENERATED)
    assert not stale, f"{stale} in apps/frontend/src/generated {FIX}"
