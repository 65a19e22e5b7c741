"""The serving API's OpenAPI document, offline: the app is built, not started (no Ray, no model).

    python -m guessme_serve.openapi [FILE]   # default: stdout

The front end's REST types are generated from it (apps/frontend: `npm run gen:types`).
"""

import json
import sys
from pathlib import Path
from typing import Any

from guessme_serve.api import create_api


def document() -> dict[str, Any]:
    return create_api().openapi()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    text = render(document())
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
