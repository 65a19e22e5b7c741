"""The contracts' JSON Schemas, committed under schemas/: the source of the game's generated types.

    python -m guessme_contracts.json_schemas [FOLDER]   # default: the committed schemas/ folder

Python code uses the pydantic models and constants themselves; these files exist for the other
languages (the front end's `npm run gen:types` compiles them to TypeScript). A unit test fails
when the committed files differ from what this writes.
"""

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import TypeAdapter

from guessme_contracts import limits, messages

SCHEMAS = Path(__file__).resolve().parent / "schemas"


def _constants(title: str, description: str, module: ModuleType, names: Sequence[str]) -> dict[str, Any]:
    """Constants as a schema of `const` properties: a generator may emit the values, not just types."""
    return {
        "title": title,
        "description": f"{description} ({module.__name__})",
        "type": "object",
        "properties": {name: {"const": getattr(module, name)} for name in names},
        "required": list(names),
        "additionalProperties": False,
    }


def _union(title: str, description: str, union: Any, mode: Any) -> dict[str, Any]:
    schema = TypeAdapter(union).json_schema(mode=mode)
    for model in schema.get("$defs", {}).values():
        for prop in model.get("properties", {}).values():
            prop.pop("title", None)  # pydantic's per-field titles would become one type alias per field
    return {"title": title, "description": description, **schema}


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema."""
    return {
        "drawing-limits.schema.json": _constants(
            "DrawingLimits", "What one drawing may hold; the server refuses more", limits, limits.EXPORTED
        ),
        "ws-constants.schema.json": _constants(
            "WsConstants", "The /ws close codes and the longest message id", messages, messages.EXPORTED
        ),
        # What the server accepts (validation) and what it sends (serialization).
        "ws-client-message.schema.json": _union(
            "ClientMessage", "What the game sends on /ws.", messages.ClientMessage, "validation"
        ),
        "ws-server-message.schema.json": _union(
            "ServerMessage", "What the server answers on /ws.", messages.ServerMessage, "serialization"
        ),
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / name
        path.write_text(render(schema))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    for path in write(Path(args[0]) if args else SCHEMAS):
        print(path)


if __name__ == "__main__":
    main()
